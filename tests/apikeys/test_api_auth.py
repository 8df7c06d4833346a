"""Authentication and reach on the API: the verification hot path as programs meet it."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from ninja.responses import NinjaJSONEncoder

from accounts.access import Actor
from accounts.models import AuditEvent, Membership, Role
from apikeys import usage
from apikeys.api.keys import whoami_out
from apikeys.api.schemas import WhoAmI
from apikeys.models import ApiKey, KeyKind, KeyStatus, KeyUsage
from apikeys.permissions import ALL
from apikeys.services import api_key_revoke, api_key_rotate, api_key_update
from apikeys.verification import verify_token
from keyportal_cli.tokens import generate_token
from projects.models import ApiKeyAccess
from tests.apikeys.conftest import build_tree, operator_key
from tests.factories import AppFactory, ServiceAccountFactory

pytestmark = pytest.mark.django_db
OPERATOR = Actor.operator("operator (tests)")


make = operator_key


def get(path: str, token: str | None = None, **extra):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return Client().get(path, **headers, **extra)


def error_of(response) -> dict:
    return response.json()["error"]


def assert_401(response, code: str) -> None:
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert error_of(response)["code"] == code


# --- 401 codes -----------------------------------------------------------------------------


def test_malformed_key_is_refused_without_a_query(org, django_assert_num_queries):
    """A string that fails the format or checksum is refused before any database query."""
    token = generate_token("org")
    typo = token[:-1] + ("A" if token[-1] != "A" else "B")
    with django_assert_num_queries(0):
        assert_401(get("/api/v1/whoami", typo), "invalid_key")
        assert_401(get("/api/v1/whoami", "not-a-key"), "invalid_key")


def test_unknown_well_formed_key_is_invalid(org):
    """A well-formed key that was never issued is invalid_key."""
    assert_401(get("/api/v1/whoami", generate_token("org")), "invalid_key")


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ("disable", "key_disabled"),
        ("expire", "key_expired"),
        ("revoke", "key_revoked"),
    ],
)
def test_state_changes_hold_from_the_next_request(org, change, code):
    """Disabling, expiry and revoking are refused on the very next request, with their code."""
    api_key, token = make(org)
    assert get("/api/v1/whoami", token).status_code == 200
    if change == "disable":
        api_key_update(
            actor=OPERATOR,
            api_key=api_key,
            name=api_key.name,
            status=KeyStatus.DISABLED,
            permissions=api_key.permissions,
        )
    elif change == "expire":
        ApiKey.objects.filter(pk=api_key.pk).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
    else:
        api_key_revoke(actor=OPERATOR, api_key=api_key)
    assert_401(get("/api/v1/whoami", token), code)


def test_rotation_stops_the_old_secret_at_once_or_after_the_grace(org):
    """With grace 'now' the old secret is refused; with a grace it works until the grace ends."""
    api_key, old = make(org)
    api_key, graced = api_key_rotate(actor=OPERATOR, api_key=api_key, grace="1h")
    assert get("/api/v1/whoami", old).status_code == 200
    assert get("/api/v1/whoami", graced).status_code == 200
    ApiKey.objects.filter(pk=api_key.pk).update(previous_valid_until=timezone.now())
    assert_401(get("/api/v1/whoami", old), "invalid_key")
    api_key.refresh_from_db()
    _api_key, newest = api_key_rotate(actor=OPERATOR, api_key=api_key, grace="now")
    assert_401(get("/api/v1/whoami", graced), "invalid_key")
    assert get("/api/v1/whoami", newest).status_code == 200


def test_deactivated_service_account_disables_its_keys(org):
    """A service account's deactivation is key_disabled for its keys."""
    account = ServiceAccountFactory(organization=org.organization)
    _key, token = make(org, kind=KeyKind.SERVICE_ACCOUNT, owner=account)
    account.is_active = False
    account.save()
    assert_401(get("/api/v1/whoami", token), "key_disabled")


def test_personal_key_is_cut_to_its_owners_current_role(org):
    """A personal key's effective permissions follow its owner's role at every request."""
    _key, token = make(
        org,
        permissions=("projects:read", "projects:create"),
        kind=KeyKind.USER,
        owner=org.admin,
        expires_at=timezone.now() + timedelta(days=7),
    )
    assert "projects:create" in get("/api/v1/whoami", token).json()["effective_permissions"]
    Membership.objects.filter(user=org.admin).update(role=Role.MEMBER)
    body = get("/api/v1/whoami", token).json()
    assert body["effective_permissions"] == ["projects:read"]
    response = Client().post(
        "/api/v1/teams",
        data=json.dumps({"name": "x"}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 403
    Membership.objects.filter(user=org.admin).delete()
    assert_401(get("/api/v1/whoami", token), "invalid_key")


def test_key_in_the_query_string_is_refused(org):
    """A key in the URL is refused, even beside a valid header, and never authenticates."""
    _key, token = make(org)
    assert_401(get(f"/api/v1/whoami?api_key={token}"), "invalid_key")
    response = get(f"/api/v1/whoami?key={token}", token)
    assert_401(response, "invalid_key")
    assert "never in a URL" in error_of(response)["message"]


def test_key_in_the_body_does_not_authenticate(org):
    """A key sent in a JSON body instead of the header is refused."""
    _key, token = make(org, permissions=("teams:create",))
    response = Client().post(
        "/api/v1/teams",
        data=json.dumps({"name": "x", "api_key": token}),
        content_type="application/json",
    )
    assert_401(response, "invalid_key")


def test_failed_attempts_are_limited_per_address(org, settings):
    """Past the limit of failures, the address's failures get 429 with Retry-After."""
    settings.KEYPORTAL_API_AUTH_FAILURES_PER_MINUTE = 3
    _key, token = make(org)
    for _ in range(3):
        assert get("/api/v1/whoami", generate_token("org")).status_code == 401
    response = get("/api/v1/whoami", generate_token("org"))
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert error_of(response)["code"] == "rate_limited"
    # A missing key and a key in the URL are failures too.
    assert get("/api/v1/whoami", None).status_code == 429
    assert Client().get("/api/v1/whoami", {"key": token}).status_code == 429
    # Another address is not affected.
    assert get("/api/v1/whoami", generate_token("org"), REMOTE_ADDR="10.9.8.7").status_code == 401


def test_a_valid_key_still_works_from_a_limited_address(org, settings):
    """The limit is on failures: one broken script behind a shared address locks out no one."""
    settings.KEYPORTAL_API_AUTH_FAILURES_PER_MINUTE = 2
    _key, token = make(org)
    for _ in range(3):
        get("/api/v1/whoami", generate_token("org"))
    assert get("/api/v1/whoami", generate_token("org")).status_code == 429
    assert get("/api/v1/whoami", token).status_code == 200


# --- the hot path's cost -------------------------------------------------------------------


def test_a_request_makes_one_query_and_no_write(org, django_assert_num_queries):
    """whoami with a valid key costs one SELECT and writes nothing (usage is buffered)."""
    api_key, token = make(org)
    with django_assert_num_queries(1) as queries:
        assert get("/api/v1/whoami", token).status_code == 200
    assert queries.captured_queries[0]["sql"].lstrip().upper().startswith("SELECT")
    assert not KeyUsage.objects.exists()
    api_key.refresh_from_db()
    assert api_key.last_used_at is None


@pytest.mark.parametrize("kind", KeyKind.values)
def test_whoami_says_what_its_schema_says_in_one_query(org, kind, django_assert_num_queries):
    """whoami renders its body without django-ninja's validation pass (it is the hot path's
    most frequent call): the body must be exactly what that pass would have produced from the
    same data (no field the schema does not declare), for every kind of owner, and reading the
    owner must not cost a second query."""
    owner = {
        KeyKind.USER: org.member,
        KeyKind.SERVICE_ACCOUNT: ServiceAccountFactory(organization=org.organization),
        KeyKind.PROJECT: build_tree(org).project,
    }.get(kind)
    expiry = {"expires_at": timezone.now() + timedelta(days=3)} if kind == KeyKind.USER else {}
    _key, token = make(org, kind=kind, owner=owner, **expiry)
    with django_assert_num_queries(1):
        response = get("/api/v1/whoami", token)
    assert response.status_code == 200
    assert response["Content-Type"] == get("/api/v1/health")["Content-Type"]
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    validated = WhoAmI.model_validate(whoami_out(verify_token(token))).model_dump()
    assert body == json.loads(json.dumps(validated, cls=NinjaJSONEncoder))
    assert set(body) == set(WhoAmI.model_fields)
    assert body["owner"]["name"] == str(owner or org.organization)
    assert body["organization"]["slug"] == org.organization.slug
    stored = ApiKey.objects.get(pk=body["id"])
    assert stored.digest not in response.content.decode()


@pytest.mark.parametrize("kind", [KeyKind.ORGANIZATION, KeyKind.USER])
def test_reading_the_organization_costs_the_lookup_only(org, kind, django_assert_num_queries):
    """GET /organization answers from the organization loaded with the key (all its columns)."""
    personal = {"owner": org.admin, "expires_at": timezone.now() + timedelta(days=3)}
    extra = personal if kind == KeyKind.USER else {}
    _key, token = make(org, permissions=("organization:read",), kind=kind, **extra)
    with django_assert_num_queries(1):
        response = get("/api/v1/organization", token)
    assert response.status_code == 200
    assert response.json()["slug"] == org.organization.slug


def test_usage_is_written_in_a_batch(org):
    """Buffered counts and last use reach the database on flush, adding up across flushes."""
    api_key, token = make(org)
    for _ in range(3):
        get("/api/v1/whoami", token)
    assert usage.flush() == 1
    get("/api/v1/whoami", token)
    usage.flush()
    row = KeyUsage.objects.get(api_key=api_key)
    assert row.count == 4
    assert row.day == timezone.now().date()
    api_key.refresh_from_db()
    assert api_key.last_used_at is not None


# --- reach ---------------------------------------------------------------------------------


def test_scoped_key_lists_and_reads_only_within_its_scope(org):
    """A projects:read scoped to one project lists it alone; another project is 404."""
    mine, theirs = build_tree(org, "Mine"), build_tree(org, "Theirs")
    _key, token = make(org, scopes={"projects:read": [{"type": "project", "id": mine.project.pk}]})
    names = [p["name"] for p in get("/api/v1/projects", token).json()["items"]]
    assert names == ["Mine"]
    assert get(f"/api/v1/projects/{mine.project.pk}", token).status_code == 200
    response = get(f"/api/v1/projects/{theirs.project.pk}", token)
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_project_key_reaches_only_its_project(org):
    """A project key sees its project's targets only, and no team at all."""
    mine, theirs = build_tree(org, "Mine"), build_tree(org, "Theirs")
    _key, token = make(
        org, permissions=("targets:read", "teams:read"), kind=KeyKind.PROJECT, owner=mine.project
    )
    assert [t["id"] for t in get("/api/v1/targets", token).json()["items"]] == [mine.target.pk]
    assert get(f"/api/v1/targets/{theirs.target.pk}", token).status_code == 404
    assert get("/api/v1/teams", token).json()["items"] == []


def test_another_organizations_objects_are_404(org, other_org):
    """A key never reaches another tenant's objects, whatever its permissions."""
    theirs = build_tree(other_org, "Globex")
    _key, token = make(org, permissions=ALL)
    assert get(f"/api/v1/projects/{theirs.project.pk}", token).status_code == 404
    assert theirs.project.pk not in [
        p["id"] for p in get("/api/v1/projects", token).json()["items"]
    ]


@pytest.mark.parametrize("path", ["/api/v1/apps/{app}", "/api/v1/apps/{app}/versions"])
def test_app_with_no_access_is_403_whatever_the_permissions(org, path):
    """An app whose sharing says No access answers 403 app_no_access to every key."""
    tree = build_tree(org)
    app = AppFactory(project=tree.project, api_key_access=ApiKeyAccess.NO_ACCESS)
    _key, token = make(org, permissions=ALL)
    response = get(path.format(app=app.pk), token)
    assert response.status_code == 403
    assert error_of(response)["code"] == "app_no_access"
    assert app.pk not in [a["id"] for a in get("/api/v1/apps", token).json()["items"]]


# --- writes through the API ---------------------------------------------------------------


def test_api_changes_are_recorded_with_origin_api_and_the_key(org):
    """A change made with a key writes a history row: origin API, the key's name and preview."""
    api_key, token = make(org, permissions=("teams:create",), name="ci-bot")
    response = Client().post(
        "/api/v1/teams",
        data=json.dumps({"name": "Robots"}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
        REMOTE_ADDR="203.0.113.9",
    )
    assert response.status_code == 201
    event = AuditEvent.objects.get(action="team.created")
    assert event.origin == "api"
    assert event.actor_label == f"ci-bot ({api_key.preview})"
    assert event.actor_key_id == api_key.pk
    assert event.ip_address == "203.0.113.9"


def test_a_key_cannot_create_a_key_beyond_itself(org):
    """Through the API, a key hands on at most what it holds itself."""
    _key, token = make(org, permissions=("api-keys:manage", "projects:read"))
    response = Client().post(
        "/api/v1/keys",
        data=json.dumps({"permissions": ["projects:read", "secrets:decrypt"]}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 403
    assert error_of(response) == {
        "code": "insufficient_scope",
        "message": "This API key cannot give a key what it does not hold: "
        "secrets:decrypt on the whole organization.",
        "permission": "secrets:decrypt",
    }
    assert ApiKey.objects.count() == 1


def test_created_key_plaintext_is_in_that_response_only(org):
    """POST /keys returns the token once; listing keys never shows it."""
    _key, token = make(org, permissions=("api-keys:manage", "projects:read"))
    created = Client().post(
        "/api/v1/keys",
        data=json.dumps({"permissions": ["projects:read"], "name": "child"}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert created.status_code == 201
    assert created["Cache-Control"] == "no-store"
    child = created.json()["token"]
    assert get("/api/v1/whoami", child).json()["name"] == "child"
    assert child not in get("/api/v1/keys", token).content.decode()


def test_verify_says_why_a_key_is_not_valid(org, other_org):
    """POST /keys/verify reports validity and reasons, and hides other tenants' keys."""
    _key, caller = make(org)
    revoked, revoked_token = make(org)
    api_key_revoke(actor=OPERATOR, api_key=revoked)
    _foreign, foreign_token = make(other_org)

    def verify(key: str) -> dict:
        return (
            Client()
            .post(
                "/api/v1/keys/verify",
                data=json.dumps({"key": key}),
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {caller}",
            )
            .json()
        )

    assert verify(caller)["valid"] is True
    assert verify(revoked_token) == {
        "valid": False,
        "code": "key_revoked",
        "message": "The API key has been revoked.",
        "key": None,
        "effective_permissions": [],
        "rate_limits": [],
        "budget": None,
    }
    assert verify(foreign_token)["code"] == "invalid_key"
    assert verify("nonsense")["code"] == "invalid_key"


def test_removing_a_member_revokes_their_personal_keys(org, other_org):
    """Removal revokes the member's personal keys in that organization only, in the same step."""
    from accounts.services import membership_remove

    mine, token = make(
        org, kind=KeyKind.USER, owner=org.member, expires_at=timezone.now() + timedelta(days=7)
    )
    Membership.objects.create(
        user=org.member, organization=other_org.organization, role=Role.MEMBER
    )
    elsewhere, _ = make(
        other_org,
        kind=KeyKind.USER,
        owner=org.member,
        expires_at=timezone.now() + timedelta(days=7),
    )
    membership_remove(actor=Actor(user=org.owner), membership=org.membership(org.member))
    mine.refresh_from_db()
    elsewhere.refresh_from_db()
    assert mine.is_revoked and mine.revoked_by == org.owner
    assert not elsewhere.is_revoked
    assert_401(get("/api/v1/whoami", token), "key_revoked")
    assert AuditEvent.objects.get(action="member.removed").detail["keys_revoked"] == 1
