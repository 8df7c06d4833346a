"""Keys reported leaked: the service, the public API endpoint and the console's report page."""

from __future__ import annotations

import html
import json
import logging
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.access import Actor
from accounts.models import AuditEvent, AuditEventType, Origin, Role
from apikeys.leaks import LeakOutcome, key_report_leaked, redact_tokens
from apikeys.models import ApiKey, KeyKind, LeakSource
from apikeys.selectors import key_recipients
from apikeys.services import (
    COMPROMISED_MESSAGE,
    api_key_revoke,
    api_key_rotate,
    api_key_update,
)
from apikeys.verification import KeyRejected, verify_token
from keyportal_cli.tokens import generate_token, token_preview
from tests.apikeys.conftest import detail_url, key_state, new_key, operator_key
from tests.factories import MembershipFactory, ProjectFactory, TeamFactory

pytestmark = pytest.mark.django_db

LEAKED_URL = "/api/v1/keys/leaked"
REPORT_PAGE = reverse("report_leak")
REPORTER = Actor(user=None, label="Leak report", origin=Origin.API, ip="203.0.113.7")
NEUTRAL = {
    "received": True,
    "message": "If this is a live keyportal key, it no longer works and its owner has been told.",
}


def report(token: str, **kwargs):
    """Report `token` leaked as a holder through the API would, with mail sent on commit."""
    kwargs.setdefault("report", {"location": "https://paste.example/abc"})
    return key_report_leaked(token=token, source=LeakSource.HOLDER, actor=REPORTER, **kwargs)


def post_report(body, client: Client | None = None, **extra):
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return (client or Client()).post(
        LEAKED_URL, data=data, content_type="application/json", **extra
    )


def compromised_events(api_key: ApiKey | None = None) -> list[AuditEvent]:
    events = AuditEvent.objects.filter(action=AuditEventType.API_KEY_COMPROMISED)
    if api_key is not None:
        events = events.filter(target_type="apikey", target_id=str(api_key.pk))
    return list(events.order_by("id"))


def everything_written() -> str:
    """Return every stored text a leak report may write: keys' reports, audit rows."""
    keys = list(ApiKey.objects.values_list("compromise_report", flat=True))
    events = list(AuditEvent.objects.values_list("detail", "actor_label", "target_label"))
    return json.dumps([keys, events], default=str)


@pytest.fixture
def mail_on_commit(django_capture_on_commit_callbacks, mailoutbox):
    """Run on-commit callbacks (mail) as each block ends; return the outbox."""

    class Runner:
        outbox = mailoutbox

        def __call__(self):
            return django_capture_on_commit_callbacks(execute=True)

    return Runner()


# --- the service ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not a key",
        "ghp_" + "a" * 36,  # another product's token
        generate_token("org")[:-1] + "!",
        None,
    ],
)
def test_what_is_not_a_token_makes_no_query(token, django_assert_num_queries):
    """Another product's token, a typo or garbage: not ours, and not one query."""
    with django_assert_num_queries(0):
        assert report(token).outcome == LeakOutcome.NOT_FOUND


def test_a_checksum_broken_token_makes_no_query(org, django_assert_num_queries):
    """A key with one character changed fails the checksum before any query."""
    api_key, token = new_key(org)
    broken = token[:-7] + ("A" if token[-7] != "A" else "B") + token[-6:]
    with django_assert_num_queries(0):
        assert report(broken).outcome == LeakOutcome.NOT_FOUND
    assert not ApiKey.objects.get(pk=api_key.pk).is_compromised


def test_an_unknown_well_formed_token_changes_nothing(org):
    """A token of the right shape that is no key's: nothing written."""
    api_key, _ = new_key(org)
    before, events = key_state(api_key), AuditEvent.objects.count()
    assert report(generate_token("user")).outcome == LeakOutcome.NOT_FOUND
    assert key_state(api_key) == before
    assert AuditEvent.objects.count() == events


def test_a_live_keys_secret_compromises_and_revokes_it(org, mail_on_commit):
    """The current secret of a live key: compromised, revoked, recorded, in one go."""
    api_key, token = new_key(org)
    with mail_on_commit():
        result = report(token)
    assert result.outcome == LeakOutcome.COMPROMISED
    api_key.refresh_from_db()
    assert api_key.is_compromised and api_key.is_revoked
    assert api_key.state == "compromised"
    assert api_key.compromised_source == LeakSource.HOLDER
    assert api_key.compromise_report == {"location": "https://paste.example/abc"}
    assert api_key.revoked_by is None
    assert api_key.revoked_at == api_key.compromised_at
    [event] = compromised_events(api_key)
    assert event.actor_label == "Leak report"
    assert event.origin == Origin.API
    assert event.ip_address == "203.0.113.7"
    assert event.detail == {
        "name": api_key.name,
        "preview": api_key.preview,
        "kind": "user",
        "source": "holder",
        "secret": "current",
        "revoked": True,
        "report": {"location": "https://paste.example/abc"},
    }
    with pytest.raises(KeyRejected) as refused:
        verify_token(token)
    assert refused.value.code == "key_compromised"


def test_the_compromise_is_one_update_of_the_key(org, django_assert_num_queries):
    """Lock, one UPDATE of the key, the organization, the audit row and the recipients."""
    _, token = new_key(org, KeyKind.ORGANIZATION)
    with django_assert_num_queries(7) as captured:
        report(token)
    updates = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("UPDATE")]
    assert len(updates) == 1


def test_an_old_secret_in_its_grace_period_dies_with_the_key(org):
    """A compromised key's old secret, still in its grace period, stops too."""
    api_key, old = new_key(org)
    _, new = api_key_rotate(actor=Actor(user=org.member), api_key=api_key, grace="24h")
    assert report(new).outcome == LeakOutcome.COMPROMISED
    api_key.refresh_from_db()
    assert api_key.previous_digest is None and api_key.previous_valid_until is None
    for token in (old, new):
        with pytest.raises(KeyRejected):
            verify_token(token)


def test_a_personal_key_is_told_to_its_owner_only(org, mail_on_commit):
    """A personal key's leak is emailed to its owner, nobody else."""
    _, token = new_key(org)
    with mail_on_commit():
        report(token)
    assert [m.to for m in mail_on_commit.outbox] == [[org.member.email]]


@pytest.mark.parametrize("kind", [KeyKind.ORGANIZATION, KeyKind.SERVICE_ACCOUNT, KeyKind.PROJECT])
def test_other_keys_are_told_to_active_owners_and_admins(org, kind, bot, mail_on_commit):
    """Organization, service-account and project keys: every active owner and admin, one mail
    each; not members, not deactivated people, not another organization's people."""
    gone = MembershipFactory(organization=org.organization, role=Role.ADMIN).user
    gone.is_active = False
    gone.save()
    second_owner = MembershipFactory(organization=org.organization, role=Role.OWNER).user
    MembershipFactory(role=Role.OWNER)  # another organization's owner
    owner = {
        KeyKind.SERVICE_ACCOUNT: bot,
        KeyKind.PROJECT: ProjectFactory(team=TeamFactory(organization=org.organization)),
    }.get(kind)
    _, token = new_key(org, kind, owner=owner)
    with mail_on_commit():
        report(token)
    sent = sorted(address for m in mail_on_commit.outbox for address in m.to)
    assert all(len(m.to) == 1 for m in mail_on_commit.outbox)
    assert sent == sorted([org.owner.email, org.admin.email, second_owner.email])


def test_a_deactivated_owner_of_a_personal_key_is_not_emailed(org):
    """Nobody is emailed about a personal key whose owner is deactivated."""
    api_key, _ = new_key(org)
    org.member.is_active = False
    org.member.save()
    assert key_recipients(ApiKey.objects.get(pk=api_key.pk)) == []


def test_the_mail_says_what_happened_and_links_to_the_key(org, mail_on_commit, settings):
    """The mail names the key and its preview, who reported it and where, says it no longer
    works, and links to the key's page."""
    settings.KEYPORTAL_BASE_URL = "https://keys.example.com"
    api_key, token = new_key(org, KeyKind.ORGANIZATION, name="deploy bot")
    with mail_on_commit():
        report(token, report={"location": "src/settings.py:12"})
    message = mail_on_commit.outbox[0]
    assert message.subject == "The API key deploy bot was reported leaked and no longer works"
    body = message.body
    assert '"deploy bot"' in body and api_key.preview in body
    assert "someone holding the key" in body
    assert "src/settings.py:12" in body
    assert "no longer works" in body
    assert f"https://keys.example.com{detail_url(api_key)}" in body
    assert token not in body


def test_a_revoked_key_is_marked_for_the_record_without_mail(org, mail_on_commit):
    """A revoked key's secret: marked compromised with the report and recorded, nobody emailed,
    its revocation kept as it was."""
    api_key, token = new_key(org)
    api_key_revoke(actor=Actor(user=org.owner), api_key=api_key)
    api_key.refresh_from_db()
    revoked_at = api_key.revoked_at
    with mail_on_commit():
        assert report(token).outcome == LeakOutcome.REVOKED_RECORDED
    api_key.refresh_from_db()
    assert api_key.is_compromised
    assert api_key.revoked_at == revoked_at
    assert api_key.revoked_by == org.owner
    assert mail_on_commit.outbox == []
    [event] = compromised_events(api_key)
    assert event.detail["revoked"] is False
    assert event.history_label == "Reported leaked by its holder (already revoked)"


def test_a_second_report_changes_nothing(org, mail_on_commit):
    """A key already compromised stays as it is: no new row, no new mail."""
    api_key, token = new_key(org)
    with mail_on_commit():
        report(token)
    state, mails = key_state(api_key), len(mail_on_commit.outbox)
    with mail_on_commit():
        result = key_report_leaked(
            token=token, source=LeakSource.GITHUB, report={"url": "x"}, actor=REPORTER
        )
    assert result.outcome == LeakOutcome.ALREADY
    assert key_state(api_key) == state
    assert len(compromised_events(api_key)) == 1
    assert len(mail_on_commit.outbox) == mails


def test_an_old_secret_in_its_grace_period_stops_and_the_key_goes_on(org, mail_on_commit):
    """The previous secret, in its grace period: it stops at once, the current secret works,
    the key is not compromised; recorded and emailed as the old secret's."""
    api_key, old = new_key(org, KeyKind.ORGANIZATION)
    _, new = api_key_rotate(actor=Actor(user=org.owner), api_key=api_key, grace="7d")
    with mail_on_commit():
        assert report(old).outcome == LeakOutcome.PREVIOUS_ENDED
    api_key.refresh_from_db()
    assert not api_key.is_compromised and not api_key.is_revoked
    assert api_key.previous_digest is None and api_key.previous_valid_until is None
    assert verify_token(new).api_key.pk == api_key.pk
    with pytest.raises(KeyRejected):
        verify_token(old)
    [event] = compromised_events(api_key)
    assert event.detail["secret"] == "previous"
    assert event.history_label == "Old secret reported leaked by its holder; it stopped at once"
    assert event.label == "API key's old secret reported leaked by its holder; it stopped at once"
    assert {address for m in mail_on_commit.outbox for address in m.to} == {
        org.owner.email,
        org.admin.email,
    }
    body = mail_on_commit.outbox[0].body
    assert "old secret" in body and "still works" in body
    assert old not in body and new not in body
    assert mail_on_commit.outbox[0].subject.startswith("The old secret of the API key")


def test_an_old_secret_past_its_grace_period_changes_nothing(org, mail_on_commit):
    """An old secret that already stopped working: nothing at risk, nothing written."""
    api_key, old = new_key(org)
    api_key_rotate(actor=Actor(user=org.member), api_key=api_key, grace="1h")
    ApiKey.objects.filter(pk=api_key.pk).update(
        previous_valid_until=timezone.now() - timedelta(minutes=1)
    )
    state = key_state(api_key)
    with mail_on_commit():
        assert report(old).outcome == LeakOutcome.PREVIOUS_STOPPED
    assert key_state(api_key) == state
    assert compromised_events() == []
    assert mail_on_commit.outbox == []


def test_a_token_quoted_in_the_report_is_kept_as_its_preview(org):
    """A report that quotes the key (or any key) stores only the preview."""
    api_key, token = new_key(org)
    other = generate_token("svc")
    report(token, report={"location": f"found {token} next to {other}"})
    api_key.refresh_from_db()
    expected = f"found {token_preview(token)} next to {token_preview(other)}"
    assert api_key.compromise_report == {"location": expected}
    assert redact_tokens({"a": [token]}) == {"a": [token_preview(token)]}


@pytest.mark.parametrize("around", ["API_KEY_{}", "{}_prod", "x{}y", "{}Z", "key={}"])
def test_a_token_glued_to_text_in_the_report_is_kept_as_its_preview(org, around):
    """No word boundary lets a quoted key through: `API_KEY_sk-...` is redacted like `sk-...`."""
    api_key, token = new_key(org)
    report(token, report={"location": around.format(token)})
    api_key.refresh_from_db()
    assert api_key.compromise_report == {"location": around.format(token_preview(token))}
    assert token not in everything_written()


def test_the_token_is_never_written_nor_logged(org, mail_on_commit, caplog):
    """Not in the key's report, the audit log, a mail, a response, or a log line."""
    caplog.set_level(logging.DEBUG)
    _, token = new_key(org, KeyKind.ORGANIZATION)
    with mail_on_commit():
        response = post_report({"token": token, "location": f"at {token}"})
    assert token not in response.content.decode()
    assert token not in everything_written()
    assert all(token not in m.body and token not in m.subject for m in mail_on_commit.outbox)
    assert token not in caplog.text
    assert mail_on_commit.outbox


# --- the public endpoint ----------------------------------------------------------------------


def test_the_answer_is_the_same_whatever_the_token(org):
    """A live key, an unknown one, another product's token, a checksum-broken key: the same
    202 and the same bytes."""
    _, live = new_key(org)
    unknown = generate_token("org")
    broken = unknown[:-1] + ("A" if unknown[-1] != "A" else "B")
    answers = [
        post_report({"token": token, "location": "x"})
        for token in (live, unknown, "ghp_" + "b" * 36, broken, "x")
    ]
    assert {a.status_code for a in answers} == {202}
    assert len({a.content for a in answers}) == 1
    assert answers[0].json() == NEUTRAL


def test_a_reported_key_is_refused_on_the_next_request(org):
    """The key stops at once: the very next request with it is 401 key_compromised."""
    _, token = operator_key(org)
    whoami = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert whoami.get("/api/v1/whoami").status_code == 200
    assert post_report({"token": token}).status_code == 202
    response = whoami.get("/api/v1/whoami")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert response.json()["error"] == {
        "code": "key_compromised",
        "message": "The API key was reported leaked and no longer works. Create a new key.",
    }


def test_the_endpoint_needs_no_key_nor_csrf_token(org):
    """No Authorization header, and a client enforcing CSRF checks, with a session: 202."""
    _, token = new_key(org)
    client = Client(enforce_csrf_checks=True)
    client.force_login(org.owner)
    assert post_report({"token": token}, client).status_code == 202
    assert ApiKey.objects.get(digest__isnull=False, compromised_at__isnull=False)


def test_the_report_is_recorded_as_a_leak_report_from_the_address(org):
    """The history row: "Leak report", origin API, the client's address, the location."""
    api_key, token = new_key(org)
    post_report({"token": token, "location": "ci log #42"}, REMOTE_ADDR="198.51.100.9")
    [event] = compromised_events(api_key)
    assert (event.actor_label, event.origin, event.ip_address) == (
        "Leak report",
        Origin.API,
        "198.51.100.9",
    )
    assert event.detail["report"] == {"location": "ci log #42"}


@pytest.mark.parametrize(
    ("body", "status", "code", "says"),
    [
        ("{not json", 400, "bad_request", "Cannot parse request body"),
        ({}, 422, "invalid_request", "token: Field required"),
        ({"token": 5}, 422, "invalid_request", "token:"),
        ({"token": ["sk-org-x"]}, 422, "invalid_request", "token:"),
        ({"token": ""}, 422, "invalid_request", "token:"),
        ({"token": "x" * 1001}, 422, "invalid_request", "token:"),
        ({"token": "x", "location": "y" * 501}, 422, "invalid_request", "location:"),
        ({"token": "x", "location": "a\nb"}, 422, "invalid_request", "location:"),
        ({"token": "x", "location": "a\u202eb"}, 422, "invalid_request", "location:"),
        ({"token": "x", "location": 5}, 422, "invalid_request", "location:"),
        ({"token": "a\x00b"}, 422, "invalid_request", "NUL"),
        ({"token": "x", "where": "y"}, 422, "invalid_request", "where:"),
        ([{"token": "x"}], 422, "invalid_request", ""),
        ({"token": "x", "location": "z" * 17_000}, 413, "too_large", "16 KiB"),
    ],
)
def test_malformed_bodies_are_refused_and_change_nothing(org, body, status, code, says):
    """Not JSON, a missing or mistyped field, text too long, control characters, an unknown
    field, a body too large: a clear error naming the problem, nothing changed, never a 500."""
    api_key, token = new_key(org)
    if isinstance(body, dict) and body.get("token") == "x":
        body["token"] = token  # a live key: refused all the same
    before = key_state(api_key)
    response = post_report(body)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert says in response.json()["error"]["message"]
    assert token not in response.content.decode()
    assert key_state(api_key) == before
    assert compromised_events() == []


def test_a_key_in_the_query_string_is_refused_and_not_reported(org):
    """The token belongs in the body: in the URL it is refused (401) and nothing happens."""
    api_key, token = new_key(org)
    response = Client().post(f"{LEAKED_URL}?token={token}", content_type="application/json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_key"
    assert not ApiKey.objects.get(pk=api_key.pk).is_compromised


def test_reports_are_limited_per_address(org, settings):
    """Past the rate, 429 with Retry-After, and the report is not acted on; another address
    is not limited."""
    settings.KEYPORTAL_LEAK_REPORTS_RATE = "2/m"
    for _ in range(2):
        assert post_report({"token": generate_token("org")}).status_code == 202
    api_key, token = new_key(org)
    response = post_report({"token": token})
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(response["Retry-After"]) <= 60
    assert not ApiKey.objects.get(pk=api_key.pk).is_compromised
    assert post_report({"token": token}, REMOTE_ADDR="192.0.2.44").status_code == 202
    assert ApiKey.objects.get(pk=api_key.pk).is_compromised


def test_the_openapi_document_describes_the_endpoint():
    """Public, the token write-only, the answers listed."""
    document = Client().get("/api/v1/openapi.json").json()
    operation = document["paths"][LEAKED_URL]["post"]
    assert operation["x-permission"] == "public"
    assert set(operation["responses"]) == {"202", "400", "413", "422", "429"}
    token = document["components"]["schemas"]["LeakReport"]["properties"]["token"]
    assert token["writeOnly"] is True


# --- a compromised key is final ---------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        lambda actor, key: api_key_update(actor=actor, api_key=key, name="new name"),
        lambda actor, key: api_key_update(actor=actor, api_key=key, status="active"),
        lambda actor, key: api_key_update(actor=actor, api_key=key, expires_at=None),
        lambda actor, key: api_key_rotate(actor=actor, api_key=key),
    ],
    ids=["rename", "enable", "extend", "rotate"],
)
def test_a_compromised_key_cannot_be_changed(org, change):
    """Editing, enabling, extending or rotating a compromised key is refused, saying why."""
    api_key, token = new_key(org, KeyKind.ORGANIZATION)
    report(token)
    before = key_state(api_key)
    with pytest.raises(ValidationError) as refused:
        change(Actor(user=org.owner), ApiKey.objects.get(pk=api_key.pk))
    assert refused.value.messages == [COMPROMISED_MESSAGE]
    assert "reported leaked" in COMPROMISED_MESSAGE
    assert key_state(api_key) == before


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("patch", "/api/v1/keys/{id}", {"name": "renamed"}),
        ("patch", "/api/v1/keys/{id}", {"status": "active"}),
        ("post", "/api/v1/keys/{id}/rotate", {"grace": "now"}),
    ],
)
def test_the_api_refuses_changing_a_compromised_key(org, method, path, body):
    """Through the API: 422 saying the key was reported leaked."""
    manager = operator_key(org, ["api-keys:manage", "projects:read"])[1]
    api_key, token = operator_key(org)
    report(token)
    before = key_state(api_key)
    response = getattr(Client(HTTP_AUTHORIZATION=f"Bearer {manager}"), method)(
        path.format(id=api_key.pk), data=json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 422
    assert response.json()["error"]["message"] == COMPROMISED_MESSAGE
    assert key_state(api_key) == before


def test_the_api_shows_a_compromised_key_as_such(org):
    """GET /keys/{id}: state "compromised"."""
    manager = operator_key(org, ["api-keys:manage", "projects:read"])[1]
    api_key, token = operator_key(org)
    report(token)
    response = Client(HTTP_AUTHORIZATION=f"Bearer {manager}").get(f"/api/v1/keys/{api_key.pk}")
    assert response.json()["state"] == "compromised"


# --- the console ------------------------------------------------------------------------------


def test_the_keys_page_says_who_reported_it_and_where(org, client_for):
    """The key's page: a compromised badge, who reported it, where (as text), no edit form."""
    api_key, token = new_key(org)
    report(token, report={"location": "https://evil.example/x"})
    page = client_for(org.member).get(detail_url(api_key))
    text = page.content.decode()
    assert page.status_code == 200
    assert ">Compromised<" in text
    assert "Reported leaked</strong> by its holder" in text
    assert "https://evil.example/x" in text
    assert 'href="https://evil.example/x"' not in text
    assert 'id="key-edit"' not in text
    assert "Reported leaked by its holder; revoked" in text  # the history


def test_a_github_report_links_to_the_file(org, client_for):
    """GitHub's report, signed, links to where the key was found."""
    api_key, token = new_key(org)
    url = "https://github.com/octo/app/blob/0123456789abcdef0123456789abcdef01234567/conf.py"
    key_report_leaked(
        token=token,
        source=LeakSource.GITHUB,
        report={"url": url, "repository": "octo/app", "file": "conf.py", "commit": "0123456789ab"},
        actor=REPORTER,
    )
    text = client_for(org.member).get(detail_url(api_key)).content.decode()
    assert f'href="{url}"' in text
    assert "octo/app" in text and "conf.py" in text
    assert "Reported leaked by GitHub secret scanning; revoked" in text


def test_the_audit_log_reads_the_report(org, client_for):
    """The audit log's row names the event and the key."""
    api_key, token = new_key(org)
    report(token)
    text = client_for(org.owner).get(reverse("audit_log", kwargs={"org": "acme"})).content
    assert b"API key reported leaked by its holder; revoked" in text
    assert api_key.preview.encode() in text


def test_a_compromised_key_cannot_be_edited_in_the_console(org, client_for, htmx_headers):
    """Posting the edit form of a compromised key is 422, saying it was reported leaked."""
    api_key, token = new_key(org, KeyKind.ORGANIZATION)
    report(token)
    data = {"name": "x", "status": "active", "preset": "custom", "permissions": ["projects:read"]}
    client = client_for(org.owner)
    fragment = client.post(detail_url(api_key), data, headers=htmx_headers)
    page = client.post(detail_url(api_key), data)
    assert fragment.status_code == page.status_code == 422
    assert COMPROMISED_MESSAGE in html.unescape(fragment.content.decode())
    assert "It no longer works and cannot be changed" in page.content.decode()
    assert not ApiKey.objects.filter(name="x").exists()


def test_the_report_page_is_public_with_a_form_that_does_not_echo(db):
    """Anyone can open it; the key field does not autocomplete nor spellcheck."""
    response = Client().get(REPORT_PAGE)
    text = response.content.decode()
    assert response.status_code == 200
    assert 'name="token"' in text
    assert 'autocomplete="off"' in text and 'spellcheck="false"' in text
    assert 'name="location"' in text


def test_reporting_on_the_page_stops_the_key_and_answers_neutrally(org, mail_on_commit):
    """A post stops the key, then redirects to the same neutral answer as the API's."""
    api_key, token = new_key(org)
    client = Client()
    with mail_on_commit():
        response = client.post(REPORT_PAGE, {"token": token, "location": "a gist"})
    assert response.status_code == 302
    assert response["Location"] == f"{REPORT_PAGE}?sent=1"
    page = client.get(response["Location"])
    assert NEUTRAL["message"] in page.content.decode()
    assert token not in page.content.decode()
    api_key.refresh_from_db()
    assert api_key.is_compromised
    assert api_key.compromise_report == {"location": "a gist"}
    [event] = compromised_events(api_key)
    assert (event.actor_label, event.origin, event.actor_user) == ("Leak report", "web", None)
    assert [m.to for m in mail_on_commit.outbox] == [[org.member.email]]


def test_an_unknown_key_gets_the_same_answer_on_the_page(db):
    """A well-formed key that is no one's: the same redirect."""
    response = Client().post(REPORT_PAGE, {"token": generate_token("project")})
    assert response.status_code == 302
    assert response["Location"] == f"{REPORT_PAGE}?sent=1"


def test_a_signed_in_member_is_recorded_as_themselves(org):
    """A member of the key's organization who reports it is the row's actor."""
    api_key, token = new_key(org, KeyKind.ORGANIZATION)
    client = Client()
    client.force_login(org.member)
    client.post(REPORT_PAGE, {"token": token})
    [event] = compromised_events(api_key)
    assert (event.actor_user, event.origin) == (org.member, "web")


def test_a_person_of_another_organization_is_recorded_anonymously(org, other_org):
    """Another tenant's person is not named in this organization's history."""
    api_key, token = new_key(org)
    client = Client()
    client.force_login(other_org.owner)
    client.post(REPORT_PAGE, {"token": token})
    [event] = compromised_events(api_key)
    assert (event.actor_user, event.actor_label, event.origin) == (None, "Leak report", "web")
    assert other_org.owner.email not in str(event.detail)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"token": ""}, "token"),
        ({"token": "ghp_" + "c" * 36}, "token"),
        ({"token": "{broken}"}, "token"),
        ({"token": "{live}", "location": "a\x1bb"}, "location"),
        ({"token": "{live}", "location": "x" * 501}, "location"),
    ],
)
def test_a_refused_form_names_the_field_and_never_shows_the_key(org, data, field):
    """The error sits next to its field (aria-invalid, aria-describedby); the key field comes
    back empty, whatever was typed; nothing is reported."""
    api_key, token = new_key(org)
    fills = {"{live}": token, "{broken}": token[:-1] + ("A" if token[-1] != "A" else "B")}
    data = {name: fills.get(value, value) for name, value in data.items()}
    response = Client().post(REPORT_PAGE, data)
    text = response.content.decode()
    assert response.status_code == 422
    assert f'aria-invalid="true" aria-describedby="id_{field}_helptext id_{field}_error"' in text
    assert f'id="id_{field}_error"' in text
    if data["token"]:
        assert data["token"] not in text
    assert 'name="token" value' not in text
    assert not ApiKey.objects.get(pk=api_key.pk).is_compromised


def test_the_page_needs_a_csrf_token(org):
    """The form is CSRF-protected: a post without the token is 403, nothing reported."""
    api_key, token = new_key(org)
    response = Client(enforce_csrf_checks=True).post(REPORT_PAGE, {"token": token})
    assert response.status_code == 403
    assert not ApiKey.objects.get(pk=api_key.pk).is_compromised


def test_the_page_shares_the_limit_with_the_api(org, settings):
    """The page and the API count against the same limit per address: 429, Retry-After, the
    key not shown back and not reported."""
    settings.KEYPORTAL_LEAK_REPORTS_RATE = "1/h"
    assert post_report({"token": generate_token("org")}).status_code == 202
    api_key, token = new_key(org)
    response = Client().post(REPORT_PAGE, {"token": token})
    assert response.status_code == 429
    # django-ratelimit's windows are fixed (staggered per address), so the wait is anywhere in
    # the hour: asserting more than a minute failed once, when the window was about to turn.
    assert 1 <= int(response["Retry-After"]) <= 3600
    assert "Too many reports from your address" in response.content.decode()
    assert token not in response.content.decode()
    assert not ApiKey.objects.get(pk=api_key.pk).is_compromised


def test_the_login_page_and_the_console_link_to_the_report_page(org, client_for):
    """Linked from the login page and from the console's navigation."""
    assert f'href="{REPORT_PAGE}"' in Client().get(reverse("login")).content.decode()
    page = client_for(org.member).get(reverse("project_list", kwargs={"org": "acme"}))
    assert f'href="{REPORT_PAGE}"' in page.content.decode()
