"""Device login as RFC 8628 writes it: form-encoded requests, RFC 6749 token responses and
errors, beside `keyportal login`'s JSON (tests/apikeys/test_device_flow.py). Last, a real OAuth
client library (authlib) logs in against the live server."""

from __future__ import annotations

import base64
import json
import logging
import time
import warnings
from datetime import timedelta
from urllib.parse import quote, urlencode

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.html import strip_tags

from accounts.models import AuditEvent, Origin
from apikeys.api.device import DEVICE_GRANT
from apikeys.models import ApiKey, DeviceAuthorization, DeviceState, KeyKind
from apikeys.permissions import ROLE_PERMISSIONS, ordered
from keyportal_cli.tokens import token_digest
from tests.accounts.helpers import page_text
from tests.apikeys.conftest import PERSONAL_KEYS_URL

with warnings.catch_warnings():
    # authlib prefers the httpx2 package, and warns when it falls back to httpx (as here). Its
    # own filter says "always" once authlib.deprecate is imported: ours goes in front of it.
    import authlib.deprecate  # noqa: F401

    warnings.simplefilter("ignore", DeprecationWarning)
    from authlib.integrations.httpx_client import OAuth2Client, OAuthError

pytestmark = pytest.mark.django_db
DEVICE_URL = reverse("device")
CODE_URL = "/api/v1/device/code"
TOKEN_URL = "/api/v1/device/token"
FORM = "application/x-www-form-urlencoded"
CLIENT_ID = "acme-deploy-tool/2.1"


@pytest.fixture(autouse=True)
def no_pacing(settings):
    """Tests poll back to back; the pacing rule has its own test."""
    settings.KEYPORTAL_DEVICE_POLL_SECONDS = 0


def post_form(path: str, fields: dict | list, *, address: str = "10.1.2.3", **headers):
    """POST `fields` form-encoded, as RFC 6749 clients do (a list of pairs may repeat one)."""
    return Client().post(
        path, urlencode(fields, doseq=True), content_type=FORM, REMOTE_ADDR=address, **headers
    )


def ask(client_id: str | None = CLIENT_ID, **fields):
    if client_id is not None:
        fields["client_id"] = client_id
    return post_form(CODE_URL, fields)


def started(**fields) -> dict:
    response = ask(**fields)
    assert response.status_code == 200, response.content
    return response.json()


def poll(device_code: str | None, client_id: str | None = CLIENT_ID, **fields):
    fields = {"grant_type": DEVICE_GRANT, **fields}
    if device_code is not None:
        fields["device_code"] = device_code
    if client_id is not None:
        fields["client_id"] = client_id
    return post_form(TOKEN_URL, fields)


def oauth_error(response, status: int = 400) -> str:
    """Return the RFC 6749 error code of a refusal, checking its shape."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert isinstance(body["error"], str)
    # RFC 6749 §5.2: error_description is printable ASCII without '"' and '\'.
    assert all(0x20 <= ord(c) <= 0x7E and c not in '"\\' for c in body["error_description"])
    return body["error"]


def approve(client_for, org, user_code: str):
    response = client_for(org.member).post(
        DEVICE_URL, {"code": user_code, "org": org.organization.pk, "decision": "approve"}
    )
    assert "Approved" in page_text(response)
    return response


def test_the_rfc_exchange_gives_a_bearer_token_that_works(client_for, org):
    """Code (form), pending, approval in the browser, token (RFC 6749 §5.1), whoami, spent."""
    body = started(scope="openid offline_access")
    assert set(body) == {
        "device_code",
        "user_code",
        "verification_uri",
        "verification_uri_complete",
        "expires_in",
        "interval",
    }
    assert body["verification_uri"] == "http://testserver/device/"
    assert (
        body["verification_uri_complete"] == f"{body['verification_uri']}?code={body['user_code']}"
    )
    assert body["expires_in"] == 600
    row = DeviceAuthorization.objects.get()
    assert (row.client, row.host, row.ip_address) == (CLIENT_ID, "", "10.1.2.3")
    assert row.device_code_digest == token_digest(body["device_code"])

    pending = poll(body["device_code"])
    assert oauth_error(pending) == "authorization_pending"
    assert pending["Pragma"] == "no-cache"

    # The approval page names the client_id as the program's own claim, and the address.
    page = page_text(client_for(org.member).get(DEVICE_URL, {"code": body["user_code"]}))
    assert f"The program says it is {CLIENT_ID} and names no host" in (
        " ".join(strip_tags(page).split())
    )
    assert '<dt>Requested from</dt><dd class="mono">10.1.2.3</dd>' in page
    approve(client_for, org, body["user_code"])

    response = poll(body["device_code"])
    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    assert response["Pragma"] == "no-cache"
    assert response["Content-Type"].startswith("application/json")
    token = response.json()
    assert token["token_type"] == "Bearer"
    assert token["access_token"].startswith("sk-user-")
    key = ApiKey.objects.get(digest=token_digest(token["access_token"]))
    assert token["key"]["id"] == key.pk
    assert token["organization"] == {"id": org.organization.pk, "name": "Acme", "slug": "acme"}
    # The key is made as `keyportal login` makes it: personal, CLI, the role, 7 days.
    assert (key.kind, key.owner_user, key.origin) == (KeyKind.USER, org.member, Origin.CLI)
    assert key.permissions == ordered(ROLE_PERMISSIONS["member"])
    assert token["scope"] == " ".join(key.permissions)
    seconds = (key.expires_at - timezone.now()).total_seconds()
    assert seconds - 5 <= token["expires_in"] <= seconds
    assert timedelta(days=6, hours=23) < timedelta(seconds=token["expires_in"]) <= timedelta(days=7)
    assert key.name.startswith(f"{CLIENT_ID} from 10.1.2.3 ")

    whoami = Client().get("/api/v1/whoami", HTTP_AUTHORIZATION=f"Bearer {token['access_token']}")
    assert whoami.status_code == 200
    assert whoami.json()["id"] == key.pk

    # Issued once: the code is spent.
    assert oauth_error(poll(body["device_code"])) == "expired_token"
    assert ApiKey.objects.count() == 1


def test_polling_faster_than_the_interval_is_slow_down(settings, org):
    settings.KEYPORTAL_DEVICE_POLL_SECONDS = 5
    body = started()
    assert body["interval"] == 5
    assert oauth_error(poll(body["device_code"])) == "authorization_pending"
    fast = poll(body["device_code"])
    assert oauth_error(fast) == "slow_down"
    assert fast.json()["interval"] == 10
    assert DeviceAuthorization.objects.get().interval == 10


def test_denial_is_access_denied(client_for, org):
    body = started()
    client_for(org.member).post(DEVICE_URL, {"code": body["user_code"], "decision": "deny"})
    assert oauth_error(poll(body["device_code"])) == "access_denied"
    assert not ApiKey.objects.exists()


def test_an_expired_code_is_expired_token(org):
    body = started()
    DeviceAuthorization.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert oauth_error(poll(body["device_code"])) == "expired_token"


def test_a_wrong_or_missing_grant_type(org):
    body = started()
    assert oauth_error(poll(body["device_code"], grant_type="password")) == (
        "unsupported_grant_type"
    )
    assert oauth_error(poll(body["device_code"], grant_type="")) == "invalid_request"
    no_grant = post_form(TOKEN_URL, {"device_code": body["device_code"], "client_id": CLIENT_ID})
    assert oauth_error(no_grant) == "invalid_request"
    assert DeviceAuthorization.objects.get().last_polled_at is None


def test_a_missing_device_code_is_invalid_request(org):
    assert oauth_error(poll(None)) == "invalid_request"
    assert oauth_error(poll("")) == "invalid_request"


def test_an_unknown_device_code_is_invalid_grant(org):
    assert oauth_error(poll("not-a-code")) == "invalid_grant"
    for odd in ("x" * 101, "d\u00e9j\u00e0", "\U0005dccc", "a b", "a\x00"):
        assert oauth_error(poll(odd)) == "invalid_grant"


def test_a_code_polled_by_another_client_id_is_invalid_grant(client_for, org):
    """RFC 6749 §5.2: a grant issued to another client. It counts as no poll at all."""
    body = started()
    approve(client_for, org, body["user_code"])
    refused = poll(body["device_code"], client_id="someone-else")
    assert oauth_error(refused) == "invalid_grant"
    assert "another client_id" in refused.json()["error_description"]
    assert DeviceAuthorization.objects.get().last_polled_at is None
    assert not ApiKey.objects.exists()
    assert poll(body["device_code"]).status_code == 200


@pytest.mark.parametrize(
    "client_id",
    [None, "", "x" * 101, "tool\x00", "tool\nname", "evil\u202etool"],
    ids=["missing", "empty", "too-long", "nul", "newline", "direction-override"],
)
def test_a_missing_or_unacceptable_client_id_is_invalid_client(org, client_id):
    assert oauth_error(ask(client_id)) == "invalid_client"
    assert not DeviceAuthorization.objects.exists()
    body = started()
    assert oauth_error(poll(body["device_code"], client_id=client_id)) == "invalid_client"
    assert DeviceAuthorization.objects.get().last_polled_at is None


def test_a_parameter_given_twice_is_invalid_request(org):
    body = started()
    twice = [("client_id", "a"), ("client_id", "b")]
    assert oauth_error(post_form(CODE_URL, twice)) == "invalid_request"
    pairs = [
        ("grant_type", DEVICE_GRANT),
        ("client_id", CLIENT_ID),
        ("device_code", body["device_code"]),
        ("device_code", body["device_code"]),
    ]
    assert oauth_error(post_form(TOKEN_URL, pairs)) == "invalid_request"


def test_unknown_parameters_are_ignored(org):
    """RFC 6749 §3.1: the server MUST ignore unrecognized request parameters."""
    body = started(audience="https://example.com", resource="x")
    assert oauth_error(poll(body["device_code"], foo="bar")) == "authorization_pending"


def basic(client_id: str, secret: str = "") -> dict:
    # RFC 6749 §2.3.1: each part form-encoded, then Base64.
    credentials = f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(credentials).decode()}


def test_the_client_id_may_come_as_http_basic(client_for, org):
    """Libraries that send client credentials in the header work too; a secret is ignored."""
    response = post_form(CODE_URL, {}, **basic(CLIENT_ID, "any-secret"))
    assert response.status_code == 200
    assert DeviceAuthorization.objects.get().client == CLIENT_ID
    device_code = response.json()["device_code"]
    approve(client_for, org, response.json()["user_code"])
    token = post_form(
        TOKEN_URL, {"grant_type": DEVICE_GRANT, "device_code": device_code}, **basic(CLIENT_ID)
    )
    assert token.status_code == 200
    assert token.json()["token_type"] == "Bearer"


def test_unreadable_or_conflicting_basic_credentials_are_401(org):
    """RFC 6749 §5.2: invalid_client after HTTP Basic is a 401 with a Basic challenge."""
    for headers, fields in [
        ({"HTTP_AUTHORIZATION": "Basic %%%"}, {}),
        (basic("one-tool"), {"client_id": "another-tool"}),
        (basic("bad\ttool"), {}),
    ]:
        response = post_form(CODE_URL, fields, **headers)
        assert oauth_error(response, status=401) == "invalid_client"
        assert response["WWW-Authenticate"] == 'Basic realm="keyportal"'
    assert not DeviceAuthorization.objects.exists()


def test_a_code_from_the_cli_can_be_polled_by_form_with_its_client(client_for, org):
    """The dialects share the codes: the client_id is the client the CLI named."""
    body = (
        Client()
        .post(
            CODE_URL,
            {"client": "keyportal-cli/0.1.0", "host": "laptop.local"},
            content_type="application/json",
        )
        .json()
    )
    approve(client_for, org, body["user_code"])
    assert oauth_error(poll(body["device_code"])) == "invalid_grant"
    token = poll(body["device_code"], client_id="keyportal-cli/0.1.0").json()
    key = ApiKey.objects.get(digest=token_digest(token["access_token"]))
    assert key.name.startswith("CLI on laptop.local ")


def test_the_json_dialect_is_unchanged(org):
    """`keyportal login`'s requests still get the API's own shapes."""
    response = Client().post(
        CODE_URL, {"client": "keyportal-cli/0.1.0", "host": "h"}, content_type="application/json"
    )
    assert response.status_code == 200
    pending = Client().post(
        TOKEN_URL, {"device_code": response.json()["device_code"]}, content_type="application/json"
    )
    assert pending.status_code == 400
    assert pending.json()["error"]["code"] == "authorization_pending"
    extra = Client().post(CODE_URL, {"client_id": CLIENT_ID}, content_type="application/json")
    assert extra.status_code == 422
    assert extra.json()["error"]["code"] == "invalid_request"
    # (The test client drops the Content-Type of an empty body: put it back.)
    empty = Client().generic("POST", CODE_URL, "", CONTENT_TYPE="application/json")
    assert empty.status_code == 422
    broken = Client().post(TOKEN_URL, "{", content_type="application/json")
    assert broken.status_code == 400
    assert broken.json()["error"]["code"] == "bad_request"


def test_a_body_without_a_content_type_is_a_form_unless_it_is_json(org):
    """authlib sends a client_id alone in a body without a Content-Type; a JSON body without
    one is read as JSON, as before."""
    form = Client().generic("POST", CODE_URL, f"client_id={quote(CLIENT_ID)}", CONTENT_TYPE="")
    assert form.status_code == 200
    legacy = Client().generic(
        "POST", CODE_URL, json.dumps({"client": "old-cli/0.0.1", "host": "h"}), CONTENT_TYPE=""
    )
    assert legacy.status_code == 200
    clients = set(DeviceAuthorization.objects.values_list("client", "host"))
    assert clients == {(CLIENT_ID, ""), ("old-cli/0.0.1", "h")}
    nothing = Client().generic("POST", TOKEN_URL, "", CONTENT_TYPE="")
    assert oauth_error(nothing) == "invalid_request"


def test_codes_are_limited_per_address_across_both_dialects(org):
    statuses = [ask().status_code for _ in range(5)]
    statuses += [
        Client()
        .post(
            CODE_URL,
            {"client": "keyportal-cli/0.1.0", "host": "h"},
            content_type="application/json",
            REMOTE_ADDR="10.1.2.3",
        )
        .status_code
        for _ in range(5)
    ]
    assert statuses == [200] * 10
    limited = ask()
    assert oauth_error(limited, status=429) == "rate_limited"
    assert limited["Retry-After"] == "60"
    assert DeviceAuthorization.objects.count() == 10


def test_the_token_is_in_no_log_page_or_row(client_for, org, caplog):
    """The access token and the device code appear in no log line, page, audit detail or row."""
    caplog.set_level(logging.DEBUG)
    body = started()
    oauth_error(poll(body["device_code"]))
    approve(client_for, org, body["user_code"])
    token = poll(body["device_code"]).json()["access_token"]
    oauth_error(poll(body["device_code"]))
    secrets = (token, body["device_code"])

    assert caplog.records  # the refused polls were logged, without either secret
    assert not any(secret in caplog.text for secret in secrets)
    pages = [
        client_for(org.member).get(DEVICE_URL, {"code": body["user_code"]}),
        client_for(org.member).get(PERSONAL_KEYS_URL),
    ]
    for page in pages:
        assert not any(secret in page_text(page) for secret in secrets)
    rows = str(list(AuditEvent.objects.values())) + str(list(DeviceAuthorization.objects.values()))
    rows += str(list(ApiKey.objects.values()))
    assert not any(secret in rows for secret in secrets)


def test_the_openapi_document_describes_both_dialects(org):
    document = Client().get("/api/v1/openapi.json").json()
    for path in (CODE_URL, TOKEN_URL):
        operation = document["paths"][path]["post"]
        assert set(operation["requestBody"]["content"]) == {"application/json", FORM}
        assert {"200", "400", "401", "422"} <= set(operation["responses"])
    form = document["paths"][TOKEN_URL]["post"]["requestBody"]["content"][FORM]["schema"]
    assert set(form["required"]) == {"grant_type", "device_code", "client_id"}


# --- A real OAuth 2.0 client library, against the live server ---------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("auth_method", ["none", "client_secret_basic"])
def test_authlib_logs_in_with_the_device_flow(live_server, client_for, org, settings, auth_method):
    """authlib (which has no device-flow helper for clients) asks for a code with its client
    authentication, polls with its generic fetch_token, honours `interval` and `slow_down`, and
    then calls whoami with the token it holds."""
    settings.KEYPORTAL_DEVICE_POLL_SECONDS = 1
    secret = "ignored" if auth_method == "client_secret_basic" else None
    with OAuth2Client(
        client_id="authlib-device-test/1.0",
        client_secret=secret,
        token_endpoint_auth_method=auth_method,
        scope="keys",
    ) as oauth:
        # RFC 8628 §3.1: the client_id as the library authenticates the client: in a form
        # body (sent without a Content-Type) or as HTTP Basic (no body at all).
        started = oauth.post(
            f"{live_server.url}{CODE_URL}", data={}, auth=oauth.client_auth(auth_method)
        )
        assert started.status_code == 200, started.text
        code = started.json()

        interval = code["interval"]
        deadline = time.monotonic() + 30
        polls = 0
        while True:
            polls += 1
            try:
                token = oauth.fetch_token(
                    f"{live_server.url}{TOKEN_URL}",
                    grant_type=DEVICE_GRANT,
                    device_code=code["device_code"],
                )
                break
            except OAuthError as refusal:
                assert refusal.error in ("authorization_pending", "slow_down")
                if refusal.error == "slow_down":
                    interval += 5  # RFC 8628 §3.5
            if polls == 1:
                # The person approves in the browser while the program waits.
                approve(client_for, org, code["user_code"])
            assert time.monotonic() < deadline
            time.sleep(interval)

        assert token["token_type"] == "Bearer"
        assert token["expires_in"] > 6 * 24 * 3600
        assert oauth.token["access_token"] == token["access_token"]
        whoami = oauth.get(f"{live_server.url}/api/v1/whoami")
        assert whoami.status_code == 200, whoami.text
        assert whoami.json()["owner"]["id"] == org.member.pk

    login = DeviceAuthorization.objects.get()
    assert (login.client, login.state) == ("authlib-device-test/1.0", DeviceState.COMPLETED)
    assert login.api_key.owner_user == org.member
