"""Authority over keys: one table of actors, keys and actions, every door against one answer.

The expected answer comes from `tests/security/authority_table.py`, written from DESIGN.md
("Authority over keys: one rulebook for every door"), never from the code under test. Each case
builds a fresh target key in a shared world, acts through one door (the console, the API, the
CLI) and checks the answer, the stored key (changed exactly as asked, or not at all) and, for a
refusal, the audit row that records it.

Test ids read `<actor>-<key>-<action>-<door>`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

import pytest
from django.db.models import Model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.access import Actor
from accounts.models import AuditEvent, Organization, Role, ServiceAccount, User
from apikeys.models import ApiKey
from apikeys.services import api_key_create, api_key_revoke
from keyportal_cli.tokens import token_digest
from tests.apikeys.conftest import TOKEN_RE, create_url, delete_url, detail_url, rotate_url
from tests.cli.conftest import cli_home, keyportal  # noqa: F401  (fixtures of the CLI cases)
from tests.conftest import Org, _organization_with_people
from tests.factories import (
    EnvironmentFactory,
    MembershipFactory,
    ProjectFactory,
    ServiceAccountFactory,
    TargetFactory,
    TeamFactory,
)
from tests.security.authority_table import (
    ACTIONS,
    ACTOR,
    ACTORS,
    CATALOGUE,
    CREATE,
    CREATES,
    LEVEL,
    SEE,
    TABLE,
    TARGET,
    TARGETS,
    WIDEN_ADD,
    ActorSpec,
    Expected,
    KeySpec,
    Outcome,
    group_of,
)

pytestmark = pytest.mark.django_db


def _operator() -> Actor:
    """Return the operator that builds the fixtures: holds everything, belongs to no one."""
    make = getattr(Actor, "operator", None)  # an operator is explicit once Actor says so
    # Before Actor.operator existed, a person-less actor was the operator.
    return make("authority table") if make else Actor(user=None, label="authority table")


OPERATOR = _operator()
BULK_URL = reverse("api_key_bulk_revoke", kwargs={"org": "acme"})
API = "/api/v1/keys"
CHANGED_BY = {
    "rename": {"name"},
    "narrow": {"permissions", "scopes"},
    "widen": {"permissions", "scopes"},
    "shorten": {"expires_at"},
    "extend": {"expires_at"},
    "disable": {"status"},
    "enable": {"status"},
    "rotate": {"digest", "preview", "rotated_at", "previous_digest", "previous_valid_until"},
    "revoke": {"revoked_at", "revoked_by_id", "previous_digest", "previous_valid_until"},
    "bulk_revoke": {"revoked_at", "revoked_by_id", "previous_digest", "previous_valid_until"},
}
# Words an audit row's detail may use for the attempted action.
ACTION_WORDS = {
    "see": ("see", "view", "read", "get", "detail"),
    "rename": ("rename", "update", "edit", "change"),
    "narrow": ("narrow", "update", "edit", "change", "permission", "grant"),
    "widen": ("widen", "update", "edit", "change", "permission", "grant"),
    # Shortening the expiry takes power away (a narrowing), extending hands it on (a widening).
    "shorten": ("shorten", "narrow", "update", "edit", "change", "expir"),
    "extend": ("extend", "widen", "update", "edit", "change", "expir"),
    "disable": ("disable", "update", "edit", "change", "status"),
    "enable": ("enable", "update", "edit", "change", "status"),
    "rotate": ("rotate",),
    "revoke": ("revoke", "delete"),
    "bulk_revoke": ("revoke", "bulk"),
}
# Detail fields that say nothing of the attempted action.
FREE_TEXT = ("name", "preview", "kind", "reason", "message")
SUCCESS = {
    ("console", "see"): 200,
    ("console", "rotate"): 201,
    ("console", "create"): 201,
    ("console", "bulk_revoke"): 302,
    ("api", "see"): 200,
    ("api", "create"): 201,
    ("api_delete", "revoke"): 204,
}


# --- the world -----------------------------------------------------------------------------------


@dataclass
class World:
    """The organization of the table: people, one branch of the hierarchy, the acting keys."""

    org: Org
    people: dict[str, User]
    nodes: dict[str, Model]
    account: ServiceAccount
    keys: dict[str, ApiKey]
    tokens: dict[str, str]

    def ref(self, node: str) -> dict:
        return {"type": LEVEL[node], "id": self.nodes[node].pk}

    def owner_of(self, spec: KeySpec):
        match spec.kind:
            case "user":
                return self.people[spec.owner]
            case "svc":
                return self.account
            case "project":
                return self.nodes["P"]
        return None

    def scopes(self, spec: KeySpec) -> dict[str, list[dict]]:
        return {p: [self.ref(s)] for p, s in spec.grants if s}

    def make_key(self, spec: KeySpec, name: str, **kwargs) -> tuple[ApiKey, str]:
        """Create a key as `spec` says, through the service, as the operator."""
        return api_key_create(
            actor=OPERATOR,
            organization=self.org.organization,
            kind=spec.kind,
            owner=self.owner_of(spec),
            name=name,
            permissions=[p for p, _ in spec.grants],
            scopes=self.scopes(spec),
            **kwargs,
        )

    def target(self, spec: KeySpec, *, disabled: bool = False) -> ApiKey:
        """Create a fresh target key expiring in 20 days (room to shorten and to extend)."""
        key, _ = self.make_key(spec, f"t-{spec.name}", expires_at=in_days(20))
        if disabled:
            ApiKey.objects.filter(pk=key.pk).update(status="disabled")
            key.refresh_from_db()
        return key


def in_days(days: float) -> datetime:
    return timezone.now() + timedelta(days=days)


def build_world(org: Org) -> World:
    """Return the table's world in `org`: a leaver (an owner deactivated after their key was
    made), a team > project > target > environment branch, a service account, the acting keys."""
    people = {"owner": org.owner, "admin": org.admin, "member": org.member}
    people["leaver"] = MembershipFactory(organization=org.organization, role=Role.OWNER).user
    team = TeamFactory(organization=org.organization)
    project = ProjectFactory(team=team)
    target = TargetFactory(project=project)
    environment = EnvironmentFactory(target=target)
    account = ServiceAccountFactory(organization=org.organization, created_by=org.owner)
    world = World(
        org=org,
        people=people,
        nodes={"T": team, "P": project, "G": target, "E": environment},
        account=account,
        keys={},
        tokens={},
    )
    for actor in ACTORS:
        if actor.key is not None:
            personal = actor.key.kind == "user"
            key, token = world.make_key(
                actor.key, f"a-{actor.name}", expires_at=in_days(7) if personal else None
            )
            world.keys[actor.name], world.tokens[actor.name] = key, token
    User.objects.filter(pk=people["leaver"].pk).update(is_active=False)
    return world


@pytest.fixture
def world(org) -> World:
    """Return the world in the `org` fixture's organization (for the CLI's live server)."""
    return build_world(org)


@pytest.fixture(scope="class")
def shared_world(django_db_setup, django_db_blocker):
    """Return one world for a whole class of cases; each case's changes are rolled back.

    Built once and committed, it saves the ten keys every case would otherwise make again.
    """
    with django_db_blocker.unblock():
        world = build_world(_organization_with_people("Acme", "acme"))
    yield world
    with django_db_blocker.unblock():
        Organization.objects.filter(pk=world.org.organization.pk).delete()
        User.objects.filter(pk__in=[user.pk for user in world.people.values()]).delete()


# --- what a case is -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    actor: str
    key: str
    action: str
    door: str

    @property
    def id(self) -> str:
        return f"{self.actor}-{self.key}-{self.action}-{self.door}"

    @property
    def expected(self) -> Expected:
        return TABLE[(self.actor, self.key, self.action)]


def doors(actor: ActorSpec, action: str) -> tuple[str, ...]:
    """Return the doors through which the actor can attempt the action."""
    if actor.is_person:
        return ("console",)
    if action == SEE:
        return ("api", "api_list", "api_list_filtered")
    if action == "revoke":
        return ("api", "api_delete")
    if action == "bulk_revoke":
        return ()  # the console's alone
    return ("api",)


def create_doors(actor: ActorSpec, new: KeySpec) -> tuple[str, ...]:
    if actor.is_person:
        # The console makes personal keys for the person signed in, never for someone else.
        return ("console",) if not new.personal or new.owner == actor.person else ()
    return ("api",)


KEY_CASES = [
    Case(actor.name, key.name, action, door)
    for actor in ACTORS
    for key in TARGETS
    for action in ACTIONS
    for door in doors(actor, action)
]
CREATE_CASES = [
    Case(actor.name, new.name, "create", door)
    for actor in ACTORS
    for new in CREATES
    for door in create_doors(actor, new)
]


# --- acting through a door ------------------------------------------------------------------------


def console(world: World, person: str) -> Client:
    client = Client()
    client.force_login(world.people[person])
    return client


def api(world: World, actor: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {world.tokens[actor]}")


def body_of(response) -> dict | list | None:
    try:
        return json.loads(response.content)
    except ValueError:
        return None


def error_code(response) -> str | None:
    body = body_of(response)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return body["error"].get("code")
    return None


def has_form_error(response) -> bool:
    text = response.content.decode(errors="replace")
    return 'class="error"' in text or 'class="form-errors"' in text


def stored(key: ApiKey) -> dict:
    """Return every stored column of the key."""
    return ApiKey.objects.filter(pk=key.pk).values().get()


def scopes_after(key: ApiKey, permissions: list[str]) -> dict:
    return {p: refs for p, refs in key.scopes.items() if p in permissions}


@dataclass
class Change:
    """One action's request (console form overrides, API body) and the columns it sets."""

    form: dict
    body: dict
    expect: dict
    # For a console expiry of "30 days": the moment it counts from is the request's.
    approximate: bool = False


def change_for(key: ApiKey, spec: KeySpec, action: str) -> Change:
    """Return what the action asks of the key, and what the key holds once it is done."""
    match action:
        case "rename":
            return Change({"name": "renamed"}, {"name": "renamed"}, {"name": "renamed"})
        case "narrow" | "widen":
            if action == "narrow":
                permissions = [p for p in key.permissions if p != spec.narrow_drop]
            else:
                permissions = [*key.permissions, WIDEN_ADD[0]]
            scopes = scopes_after(key, permissions)
            expect = {"permissions": sorted(permissions), "scopes": scopes}
            return Change(
                {"permissions": permissions}, {"permissions": permissions, "scopes": scopes}, expect
            )
        case "shorten":
            day = in_days(5).date()
            moment = in_days(5).replace(microsecond=0)
            form = {"expiration": "custom", "expires_on": day.isoformat()}
            # The console's custom date is the end of that day (UTC); the API takes the moment.
            # Computed again when checking, perhaps a second later: compared within minutes.
            return Change(
                form,
                {"expires_at": moment.isoformat()},
                {"expires_at": (datetime.combine(day, time.max, tzinfo=UTC), moment)},
                approximate=True,
            )
        case "extend":
            moment = in_days(28).replace(microsecond=0)
            return Change(
                {"expiration": "30"},
                {"expires_at": moment.isoformat()},
                {"expires_at": (in_days(30), moment)},
                approximate=True,
            )
        case "disable":
            return Change({"status": "disabled"}, {"status": "disabled"}, {"status": "disabled"})
        case "enable":
            return Change({"status": "active"}, {"status": "active"}, {"status": "active"})
    raise AssertionError(action)


def edit_form(key: ApiKey, overrides: dict) -> dict:
    """Return the detail page's edit form for the key as it stands, with `overrides`."""
    data = {
        "name": key.name,
        "status": key.status,
        "preset": "custom",
        "permissions": list(key.permissions),
        "expiration": "keep",
        "expires_on": "",
    }
    data.update(overrides)
    for permission in data["permissions"]:
        refs = key.scopes.get(permission)
        if refs:
            data[f"scope_{group_of(permission)}"] = f"{refs[0]['type']}:{refs[0]['id']}"
    return data


def send(world: World, case: Case, key: ApiKey, spec: KeySpec):
    """Attempt the case's action on the key through its door; return the response."""
    actor = ACTOR[case.actor]
    if case.door == "console":
        client = console(world, actor.person)
        match case.action:
            case "see":
                return client.get(detail_url(key))
            case "rotate":
                return client.post(rotate_url(key), {"grace": "now"})
            case "revoke":
                return client.post(delete_url(key))
            case "bulk_revoke":
                return client.post(BULK_URL, {"ids": [str(key.pk)], "confirm": "yes"})
        change = change_for(key, spec, case.action)
        return client.post(detail_url(key), edit_form(key, change.form))
    client = api(world, case.actor)
    url = f"{API}/{key.pk}"
    match case.door, case.action:
        case "api_list", _:
            return client.get(API, {"limit": 200})
        case "api_list_filtered", _:
            return client.get(API, {"name": key.name, "limit": 200})
        case "api_delete", _:
            return client.delete(url)
        case _, "see":
            return client.get(url)
        case _, "rotate":
            return client.post(f"{url}/rotate", {"grace": "now"}, content_type="application/json")
        case _, "revoke":
            return client.post(f"{url}/revoke")
    body = change_for(key, spec, case.action).body
    return client.patch(url, json.dumps(body), content_type="application/json")


def describe(response, before: dict, after: dict | None) -> str:
    """Say what the code did: status, error code, which columns changed."""
    said = f"got {response.status_code}"
    code = error_code(response)
    if code:
        said += f" {code}"
    if after is not None:
        changed = sorted(c for c in before if before[c] != after[c])
        said += f", changed {changed}" if changed else ", nothing changed"
        if "digest" in changed:
            said += " (a new secret)"
    return said


def refusal_audited(
    world: World, case: Case, key: ApiKey, since: int, *, door_origins: tuple[str, ...]
) -> str | None:
    """Return what is wrong with the refusal's audit row, or None when it is there."""
    rows = list(
        AuditEvent.objects.filter(
            pk__gt=since, action="api_key.refused", target_type="apikey", target_id=str(key.pk)
        )
    )
    if not rows:
        return "no api_key.refused audit row"
    actor = ACTOR[case.actor]
    for row in rows:
        detail = {k: str(v).lower() for k, v in row.detail.items()}
        door = detail.get("door") or detail.get("origin") or row.origin
        if actor.is_person:
            who = row.actor_user_id == world.people[actor.person].pk
        else:
            who = row.actor_key_id == world.keys[case.actor].pk
        # The attempted action, where the row names it; else anything but the key's own facts
        # and a free-text reason (which may mention other actions).
        named = [detail[k] for k in ("action", "act", "attempt", "attempted") if k in detail]
        said = named or [v for k, v in detail.items() if k not in FREE_TEXT]
        action = any(w in value for value in said for w in ACTION_WORDS[case.action])
        if door in door_origins and who and action:
            return None
    return f"api_key.refused row(s) without actor/door/action: {[r.detail for r in rows]}"


def expected_status(case: Case) -> int:
    return SUCCESS.get((case.door, case.action), 302 if case.door == "console" else 200)


def check_allowed(world, case, key, spec, response, before, after, problems) -> None:
    if case.door in ("api_list", "api_list_filtered"):
        return
    status = expected_status(case)
    if response.status_code != status:
        problems.append(f"expected {status}")
    if case.action == SEE:
        body = body_of(response)
        if case.door == "api" and not (isinstance(body, dict) and body.get("id") == key.pk):
            problems.append("the body is not the key")
        if before != after:
            problems.append("seeing changed the key")
        return
    changed = {c for c in before if before[c] != after[c]}
    allowed = CHANGED_BY[case.action]
    if changed - allowed:
        problems.append(f"also changed {sorted(changed - allowed)}")
    if case.action == "rotate":
        token = None
        if case.door == "console":
            found = set(TOKEN_RE.findall(response.content.decode(errors="replace")))
            token = found.pop() if len(found) == 1 else None
        else:
            body = body_of(response)
            token = body.get("token") if isinstance(body, dict) else None
        if after["digest"] == before["digest"]:
            problems.append("the secret did not change")
        elif token is None or token_digest(token) != after["digest"]:
            problems.append("the new secret was not handed over")
        return
    if case.action in ("revoke", "bulk_revoke"):
        if after["revoked_at"] is None:
            problems.append("the key was not revoked")
        return
    change = change_for(key, spec, case.action)
    for column, value in change.expect.items():
        got = after[column]
        if column == "permissions":
            got = sorted(got)
        if column == "expires_at":
            value = value[0] if case.door == "console" else value[1]
            close = got is not None and abs(got - value) < timedelta(minutes=5)
            if not (close if change.approximate or case.door == "console" else got == value):
                problems.append(f"expires_at is {got}, not {value}")
        elif got != value:
            problems.append(f"{column} is {got!r}, not {value!r}")


def check_refused(world, case, key, expected, response, before, after, since, problems) -> None:
    outcome = expected.outcome
    if case.door in ("api_list", "api_list_filtered"):
        return
    if before != after:
        problems.append("the refused action changed the key")
    status, code = response.status_code, error_code(response)
    if case.door == "console":
        if case.action == "bulk_revoke":
            pass  # the bulk form answers the same whatever it leaves alone
        elif outcome is Outcome.NOT_FOUND and status != 404:
            problems.append("expected 404")
        elif outcome is Outcome.FORBIDDEN and status != 403:
            problems.append("expected 403")
        elif outcome is Outcome.INSUFFICIENT and not (
            status == 403 or (status in (200, 422) and has_form_error(response))
        ):
            problems.append("expected 403 (or the form again, with an error)")
    else:
        want = {
            Outcome.NOT_FOUND: (404, None),
            Outcome.FORBIDDEN: (403, "forbidden"),
            Outcome.INSUFFICIENT: (403, "insufficient_scope"),
            Outcome.UNAUTHORIZED: (401, None),
        }[outcome]
        if status != want[0] or (want[1] and code != want[1]):
            problems.append(f"expected {want[0]}{' ' + want[1] if want[1] else ''}")
    if outcome is not Outcome.UNAUTHORIZED:
        origins = ("web",) if case.door == "console" else ("api",)
        wrong = refusal_audited(world, case, key, since, door_origins=origins)
        if wrong:
            problems.append(f"AUDIT: {wrong}")


def check_listed(case, key, expected, response, problems) -> None:
    status = response.status_code
    if expected.outcome in (Outcome.UNAUTHORIZED, Outcome.INSUFFICIENT):
        want = 401 if expected.outcome is Outcome.UNAUTHORIZED else 403
        if status != want:
            problems.append(f"expected {want}")
        return
    page = body_of(response)
    if status != 200 or not isinstance(page, dict) or not isinstance(page.get("items"), list):
        problems.append("expected 200 and a page of keys")
        return
    body = page["items"]
    listed = any(item.get("id") == key.pk for item in body)
    if listed != expected.allowed:
        problems.append("expected it listed" if expected.allowed else "expected it not listed")
    if case.door == "api_list_filtered" and any(item.get("name") != key.name for item in body):
        problems.append("FILTER: ?name= did not filter the list")


def report(problems: list[str], message: str) -> None:
    """Fail with the one line that names the case, what DESIGN expects and what the code did."""
    if problems:
        pytest.fail(message, pytrace=False)


def last_audit_id() -> int:
    return AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def run_key_case(world: World, case: Case) -> None:
    spec = TARGET[case.key]
    expected = case.expected
    key = world.target(spec, disabled=case.action == "enable")
    before, since = stored(key), last_audit_id()

    response = send(world, case, key, spec)

    after = stored(key)
    problems: list[str] = []
    if case.door in ("api_list", "api_list_filtered"):
        check_listed(case, key, expected, response, problems)
    elif expected.allowed:
        check_allowed(world, case, key, spec, response, before, after, problems)
    else:
        check_refused(world, case, key, expected, response, before, after, since, problems)
    report(
        problems,
        f"{case.id}: expected {expected.outcome.value} ({expected.reason}); "
        f"{describe(response, before, after)}; problems: {' | '.join(problems)}",
    )


# --- creating keys ------------------------------------------------------------------------------


def create_request(world: World, case: Case, spec: KeySpec, name: str):
    actor = ACTOR[case.actor]
    permissions = [p for p, _ in spec.grants]
    if case.door == "console":
        data = {
            "name": name,
            "preset": "custom",
            "permissions": permissions,
            "expiration": "30",
            "expires_on": "",
        }
        for permission, node in spec.grants:
            if node:
                data[f"scope_{group_of(permission)}"] = f"{LEVEL[node]}:{world.nodes[node].pk}"
        owner = world.owner_of(spec)
        url = create_url(spec.kind, owner.pk if spec.kind in ("svc", "project") else None)
        return console(world, actor.person).post(url, data)
    body = {
        "name": name,
        "kind": spec.kind,
        "permissions": permissions,
        "scopes": world.scopes(spec),
        "expires_at": in_days(20).replace(microsecond=0).isoformat(),
    }
    owner = world.owner_of(spec)
    if owner is not None:
        body["owner_id"] = owner.pk
    return api(world, case.actor).post(API, json.dumps(body), content_type="application/json")


def created_matches(world: World, spec: KeySpec, key: ApiKey) -> list[str]:
    problems = []
    owner = world.owner_of(spec)
    if key.kind != spec.kind:
        problems.append(f"kind {key.kind}")
    if owner is not None and key.owner.pk != owner.pk:
        problems.append(f"owner {key.owner}")
    if sorted(key.permissions) != sorted(p for p, _ in spec.grants):
        problems.append(f"permissions {key.permissions}")
    if key.scopes != world.scopes(spec):
        problems.append(f"scopes {key.scopes}")
    return problems


def run_create_case(world: World, case: Case) -> None:
    spec = CREATE[case.key]
    expected = case.expected
    name = f"new-{spec.name}"
    count = ApiKey.objects.count()

    response = create_request(world, case, spec, name)

    made = list(ApiKey.objects.filter(name=name))
    status, code = response.status_code, error_code(response)
    problems: list[str] = []
    if expected.allowed:
        if status != 201:
            problems.append("expected 201")
        if len(made) != 1:
            problems.append("no key was created")
        else:
            problems += created_matches(world, spec, made[0])
    else:
        if made or ApiKey.objects.count() != count:
            problems.append("a key was created")
        if case.door == "console":
            ok = status in (403, 404) or (
                expected.outcome is Outcome.INSUFFICIENT
                and status in (200, 422)
                and has_form_error(response)
            )
            if not ok:
                problems.append("expected 403/404 (or the form again, with an error)")
        elif expected.outcome is Outcome.FORBIDDEN:
            if status not in (403, 404):
                problems.append("expected 403 forbidden (or 404)")
        else:
            want = {Outcome.INSUFFICIENT: 403, Outcome.UNAUTHORIZED: 401}[expected.outcome]
            if status != want or (want == 403 and code != "insufficient_scope"):
                problems.append(f"expected {expected.outcome.value}")
    said = (
        f"got {status}{' ' + code if code else ''}{', created ' + str(len(made)) if made else ''}"
    )
    report(
        problems,
        f"{case.id}: expected {expected.outcome.value} ({expected.reason}); {said}; "
        f"problems: {' | '.join(problems)}",
    )


# --- a revoked key -----------------------------------------------------------------------------


REVOKED_CASES = [
    Case(actor.name, key, action, door)
    for actor in ACTORS
    for key in ("member_personal", "org_out")
    for action in ("rename", "rotate", "revoke")
    if TABLE[(actor.name, key, action)].allowed
    for door in doors(actor, action)
]


def run_revoked_case(world: World, case: Case) -> None:
    spec = TARGET[case.key]
    key = world.target(spec)
    api_key_revoke(actor=OPERATOR, api_key=key)
    key.refresh_from_db()
    before = stored(key)

    response = send(world, case, key, spec)

    after = stored(key)
    status = response.status_code
    problems = []
    if before != after:
        problems.append("the revoked key changed")
    if case.action == "revoke":
        if status != expected_status(case):
            problems.append(f"expected {expected_status(case)}, as the first time")
    elif case.door == "console":
        if status in (201, 302):
            problems.append("expected a refusal")
    elif status != 422:
        problems.append("expected 422")
    report(
        problems,
        f"{case.id} (revoked): {describe(response, before, after)}; problems: {' | '.join(problems)}",
    )


class TestEveryDoor:
    """The console and the API, for every actor, key and action; the cases share one world."""

    @pytest.mark.parametrize("case", KEY_CASES, ids=lambda c: c.id)
    def test_key_authority(self, shared_world, case):
        """Every door answers an action on a key as DESIGN's rules say, and changes only that."""
        run_key_case(shared_world, case)

    @pytest.mark.parametrize("case", CREATE_CASES, ids=lambda c: c.id)
    def test_key_creation_authority(self, shared_world, case):
        """Creating a key is allowed only to its rightful creators, within their power (rule 1)."""
        run_create_case(shared_world, case)

    @pytest.mark.parametrize("case", REVOKED_CASES, ids=lambda c: c.id)
    def test_revoked_key(self, shared_world, case):
        """A revoked key refuses every edit (422 in the API); revoking it again is no failure."""
        run_revoked_case(shared_world, case)


# --- the CLI ------------------------------------------------------------------------------------

CLI_ACTORS = [a.name for a in ACTORS if not a.is_person]
CLI_TARGETS = ("member_personal", "owner_personal", "svc_out", "project_out")
CLI_CREATES = ("personal_member_in", "personal_owner_out", "org_out", "project_out")
CLI_EXIT = {
    Outcome.ALLOW: {0},
    Outcome.NOT_FOUND: {5},
    Outcome.FORBIDDEN: {4},
    Outcome.INSUFFICIENT: {4},
    Outcome.UNAUTHORIZED: {3},
}
CLI_CASES = [
    *(
        Case(actor, key, action, "cli")
        for actor in CLI_ACTORS
        for key in CLI_TARGETS
        for action in ("rotate", "revoke")
    ),
    *(Case(actor, "+".join(CLI_TARGETS), SEE, "cli") for actor in CLI_ACTORS),
    *(Case(actor, new, "create", "cli") for actor in CLI_ACTORS for new in CLI_CREATES),
]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("case", CLI_CASES, ids=lambda c: c.id)
def test_cli_key_authority(keyportal, world, case):  # noqa: F811
    """`keyportal keys list|create|rotate|revoke` answers as the table says (exit codes 0/3/4/5)."""
    env = {"KEYPORTAL_API_KEY": world.tokens[case.actor]}
    problems: list[str] = []
    if case.action == SEE:
        keys = {name: world.target(TARGET[name]) for name in CLI_TARGETS}
        result = keyportal("--json", "keys", "list", env=env)
        outcomes = {TABLE[(case.actor, name, SEE)].outcome for name in CLI_TARGETS}
        gate = outcomes & {Outcome.UNAUTHORIZED, Outcome.INSUFFICIENT}
        if gate:
            if result.exit_code not in CLI_EXIT[gate.pop()]:
                problems.append(f"exit {result.exit_code}")
        elif result.exit_code != 0:
            problems.append(f"exit {result.exit_code}")
        else:
            listed = {item["id"] for item in json.loads(result.stdout)}
            for name, key in keys.items():
                seen = TABLE[(case.actor, name, SEE)].allowed
                if (key.pk in listed) != seen:
                    problems.append(f"{name}: expected {'listed' if seen else 'not listed'}")
        report(
            problems,
            f"{case.id}: problems: {' | '.join(problems)}; output: {result.stderr.strip()[-200:]}",
        )
        return
    if case.action == "create":
        spec = CREATE[case.key]
        expected = TABLE[(case.actor, case.key, "create")]
        args = ["keys", "create", "--name", f"new-{spec.name}", "--kind", spec.kind]
        owner = world.owner_of(spec)
        if owner is not None:
            args += ["--owner-id", str(owner.pk)]
        for permission, _ in spec.grants:
            args += ["--permission", permission]
        if spec.personal:
            args += ["--expires-at", in_days(20).date().isoformat()]
        result = keyportal(*args, env=env)
        made = ApiKey.objects.filter(name=f"new-{spec.name}").exists()
        exits = CLI_EXIT[expected.outcome] | (
            {5} if expected.outcome is Outcome.FORBIDDEN else set()
        )
        if result.exit_code not in exits:
            problems.append(f"exit {result.exit_code}")
        if made != expected.allowed:
            problems.append("a key was created" if made else "no key was created")
        report(
            problems,
            f"{case.id}: expected {expected.outcome.value} ({expected.reason}); "
            f"problems: {' | '.join(problems)}; output: {result.stderr.strip()[-200:]}",
        )
        return
    spec, expected = TARGET[case.key], case.expected
    key = world.target(spec)
    before, since = stored(key), last_audit_id()
    if case.action == "rotate":
        result = keyportal("keys", "rotate", str(key.pk), env=env)
    else:
        result = keyportal("keys", "revoke", str(key.pk), "--yes", env=env)
    after = stored(key)
    if result.exit_code not in CLI_EXIT[expected.outcome]:
        problems.append(f"exit {result.exit_code}")
    changed = sorted(c for c in before if before[c] != after[c])
    if expected.allowed:
        if case.action == "rotate" and after["digest"] == before["digest"]:
            problems.append("not rotated")
        if case.action == "revoke" and after["revoked_at"] is None:
            problems.append("not revoked")
    else:
        if changed:
            problems.append(f"changed {changed}")
        if expected.outcome is not Outcome.UNAUTHORIZED:
            wrong = refusal_audited(world, case, key, since, door_origins=("api", "cli"))
            if wrong:
                problems.append(f"AUDIT: {wrong}")
    report(
        problems,
        f"{case.id}: expected {expected.outcome.value} ({expected.reason}); "
        f"problems: {' | '.join(problems)}; output: {result.stderr.strip()[-200:]}",
    )


# --- the table itself ---------------------------------------------------------------------------

# Combinations no door can express: the console makes personal keys only for the person signed
# in, and bulk revoke is the console's alone.
INEXPRESSIBLE = {
    *(
        (actor.name, new.name, "create")
        for actor in ACTORS
        for new in CREATES
        if actor.is_person and new.personal and new.owner != actor.person
    ),
    *(
        (actor.name, key.name, "bulk_revoke")
        for actor in ACTORS
        if not actor.is_person
        for key in TARGETS
    ),
}


def test_the_table_answers_every_actor_key_and_action():
    """Every (actor, key, action) has one expected answer, and a door tries all that can be tried."""
    combinations = {
        *((a.name, k.name, action) for a in ACTORS for k in TARGETS for action in ACTIONS),
        *((a.name, new.name, "create") for a in ACTORS for new in CREATES),
    }
    assert set(TABLE) == combinations
    assert all(isinstance(answer.outcome, Outcome) for answer in TABLE.values())
    tried = {(c.actor, c.key, c.action) for c in [*KEY_CASES, *CREATE_CASES]}
    assert tried == combinations - INEXPRESSIBLE
    # Every actor kind, key kind and action appears, with allowed and refused answers alike.
    assert {o.outcome for o in TABLE.values()} == set(Outcome)
    for action in [*ACTIONS, "create"]:
        answers = {v.outcome for (_, _, act), v in TABLE.items() if act == action}
        assert Outcome.ALLOW in answers and len(answers) > 1, action


def test_the_catalogue_is_designs():
    """The table's catalogue, copied from DESIGN.md, is the application's."""
    from apikeys.permissions import PERMISSIONS

    assert set(CATALOGUE) == set(PERMISSIONS)


@pytest.mark.parametrize(
    ("actor", "key", "action", "outcome"),
    [
        # DESIGN rule 1's own examples, and issue 10's reports.
        ("admin", "svc_out", "rotate", Outcome.INSUFFICIENT),
        ("owner", "svc_out", "rotate", Outcome.ALLOW),
        ("env_key", "org_out", "rotate", Outcome.INSUFFICIENT),
        ("env_key", "project_out", "create", Outcome.INSUFFICIENT),
        ("admin_key", "owner_personal", "rotate", Outcome.NOT_FOUND),
        ("admin_key", "member_personal", "revoke", Outcome.NOT_FOUND),
        ("leaver_key", "org_in", SEE, Outcome.UNAUTHORIZED),
        # Rule 2: owners take power away from anyone's personal key, and only that.
        ("owner", "member_personal", "disable", Outcome.ALLOW),
        ("owner_key", "member_personal", "revoke", Outcome.ALLOW),
        ("owner", "member_personal", "enable", Outcome.FORBIDDEN),
        ("admin", "member_personal", "revoke", Outcome.FORBIDDEN),
        ("org_key", "member_personal", "revoke", Outcome.NOT_FOUND),
        # Rule 3: taking power away needs no containment.
        ("admin", "svc_out", "revoke", Outcome.ALLOW),
        ("env_key", "org_out", "narrow", Outcome.ALLOW),
        # Rule 5: members manage their own personal keys through a key too.
        ("member_key", "member_personal", "rotate", Outcome.ALLOW),
        ("member_key", "org_in", SEE, Outcome.NOT_FOUND),
        ("project_key", "project_in", SEE, Outcome.INSUFFICIENT),
    ],
)
def test_the_table_says_what_design_says(actor, key, action, outcome):
    """Spot checks of the table against sentences of DESIGN.md and issue 10."""
    assert TABLE[(actor, key, action)].outcome is outcome
