"""The expected answer to "may this actor do this to this key?", written from DESIGN.md alone.

DESIGN.md, "Authority over keys: one rulebook for every door", read with the resolutions the
table test was written against:

- a person's power is their role's permissions over the whole organization (members hold
  api-keys:manage for their own personal keys: rule 5);
- a key's power is its grants; a project key's unscoped grants lie on its project; a personal
  key's grants are cut to its owner's current role; a deactivated owner's key has none (401);
- power contains (p, s) when it holds p at s or at a scope above s;
- seeing (rule 4): owners and admins see every key in the console, members their own personal
  keys; a key sees what its owner sees in the console cut to what rules 2 and 3 let it act on;
  an organization or service-account key sees every non-personal key;
- rules 2 and 3 decide who may act; rule 1 (containment) applies to what hands power over:
  creating, widening, extending, re-enabling, rotating.

Nothing here reads the application's authority code: the catalogue and roles are copied from
DESIGN.md and the task's resolutions, and `test_key_authority` checks the catalogue still
matches the application's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

# --- the catalogue and the roles (DESIGN.md, "Permissions and scopes") ------------------------


def _crud(area: str) -> tuple[str, ...]:
    return tuple(f"{area}:{action}" for action in ("create", "read", "update", "delete"))


CATALOGUE: tuple[str, ...] = (
    "secrets:read",
    "secrets:write",
    "secrets:decrypt",
    "secrets:history",
    "secrets:restore",
    "secrets:purge",
    "encryption-keys:read",
    "encryption-keys:rotate",
    *_crud("projects"),
    *_crud("targets"),
    *_crud("environments"),
    *_crud("teams"),
    "organization:read",
    "organization:update",
    "members:read",
    "members:update",
    "members:delete",
    "apps:read",
    "apps:publish",
    "apps:update",
    "api-keys:manage",
)
ALL = frozenset(CATALOGUE)
MANAGE = "api-keys:manage"


def group_of(permission: str) -> str:
    """Return the catalogue group a permission is toggled with (the console's scope field)."""
    area = permission.partition(":")[0]
    return "secrets" if area == "encryption-keys" else area


ROLE_POWER: dict[str, frozenset[str]] = {
    "owner": ALL,
    "admin": ALL - {"organization:update", "members:update", "members:delete"},
    "member": frozenset(
        {
            "secrets:read",
            "projects:read",
            "targets:read",
            "environments:read",
            "organization:read",
            "teams:read",
            "members:read",
            "apps:read",
            "secrets:history",
            MANAGE,
        }
    ),
}

# --- the world: one organization and one branch of its hierarchy -------------------------------

# Scope nodes by name: the organization, team T, its project P, P's target G, G's environment E.
PARENT: dict[str, str | None] = {"org": None, "T": "org", "P": "T", "G": "P", "E": "G"}
LEVEL: dict[str, str] = {
    "org": "organization",
    "T": "team",
    "P": "project",
    "G": "target",
    "E": "environment",
}

# The people of the organization and their roles; "leaver" is deactivated after their key is made.
PEOPLE: dict[str, str] = {"owner": "owner", "admin": "admin", "member": "member", "leaver": "owner"}


def at_or_above(node: str) -> list[str]:
    """Return the node and every node above it, up to the organization."""
    chain: list[str] = []
    current: str | None = node
    while current is not None:
        chain.append(current)
        current = PARENT[current]
    return chain


Grant = tuple[str, str]  # (permission, scope node)


@dataclass(frozen=True)
class KeySpec:
    """A key as the table knows it: kind, owner, and grants as stored (None: unscoped)."""

    name: str
    kind: str  # "user", "org", "svc", "project"
    # A person's name for personal keys; "S" (the service account) for svc keys; "P" for
    # project keys; None for organization keys.
    owner: str | None
    grants: tuple[tuple[str, str | None], ...]
    # What "narrow" drops from it.
    narrow_drop: str | None = None
    deactivated: bool = False

    @property
    def permissions(self) -> frozenset[str]:
        return frozenset(p for p, _ in self.grants)

    @property
    def personal(self) -> bool:
        return self.kind == "user"

    def with_grants(self, grants: tuple[tuple[str, str | None], ...]) -> KeySpec:
        return KeySpec(self.name, self.kind, self.owner, grants, self.narrow_drop, self.deactivated)


def key_grants(key: KeySpec) -> frozenset[Grant]:
    """Return the key's grants with their scopes; unscoped means its project, or the organization."""
    base = "P" if key.kind == "project" else "org"
    return frozenset((p, s or base) for p, s in key.grants)


def key_power(key: KeySpec) -> frozenset[Grant] | None:
    """Return the key's power: its grants, cut to its owner's current role for a personal key.

    None: the key has no power at all (its owner is deactivated), so it is refused (401).
    """
    if key.deactivated:
        return None
    grants = key_grants(key)
    if key.personal:
        role = ROLE_POWER[PEOPLE[key.owner]]
        grants = frozenset((p, s) for p, s in grants if p in role)
    return grants


def contains(power: frozenset[Grant], grant: Grant) -> bool:
    """Return True when power holds the permission at the grant's scope or above it."""
    permission, scope = grant
    return any((permission, node) in power for node in at_or_above(scope))


# --- actors (rows), target keys (columns), actions ---------------------------------------------

EVERYTHING = tuple((p, None) for p in CATALOGUE)


@dataclass(frozen=True)
class ActorSpec:
    """A person in the console, or a key through the API (and the CLI)."""

    name: str
    person: str | None = None
    key: KeySpec | None = None

    @property
    def is_person(self) -> bool:
        return self.person is not None

    @property
    def role(self) -> str | None:
        """Return the role of the person acting, or of the person owning a personal key."""
        if self.person:
            return PEOPLE[self.person]
        if self.key and self.key.personal:
            return PEOPLE[self.key.owner]
        return None

    @property
    def human(self) -> str | None:
        """Return the person acting, directly or through their personal key."""
        if self.person:
            return self.person
        if self.key and self.key.personal:
            return self.key.owner
        return None

    def power(self) -> frozenset[Grant] | None:
        if self.person:
            return frozenset((p, "org") for p in ROLE_POWER[PEOPLE[self.person]])
        return key_power(self.key)


ACTORS: tuple[ActorSpec, ...] = (
    ActorSpec("owner", person="owner"),
    ActorSpec("admin", person="admin"),
    ActorSpec("member", person="member"),
    ActorSpec("owner_key", key=KeySpec("owner_key", "user", "owner", EVERYTHING)),
    ActorSpec("admin_key", key=KeySpec("admin_key", "user", "admin", EVERYTHING)),
    ActorSpec("member_key", key=KeySpec("member_key", "user", "member", EVERYTHING)),
    ActorSpec(
        "org_key",
        key=KeySpec(
            "org_key", "org", None, tuple(g for g in EVERYTHING if g[0] != "members:delete")
        ),
    ),
    ActorSpec(
        "env_key",
        key=KeySpec(
            "env_key",
            "org",
            None,
            (
                (MANAGE, None),
                ("secrets:read", "E"),
                ("secrets:write", "E"),
                ("environments:read", "E"),
            ),
        ),
    ),
    ActorSpec(
        "svc_key",
        key=KeySpec(
            "svc_key",
            "svc",
            "S",
            (
                (MANAGE, None),
                ("projects:read", None),
                ("secrets:read", None),
                ("environments:read", None),
                ("targets:read", None),
            ),
        ),
    ),
    # A project key can never hold api-keys:manage (it is organization-wide).
    ActorSpec(
        "project_key",
        key=KeySpec(
            "project_key", "project", "P", (("secrets:read", None), ("projects:read", None))
        ),
    ),
    ActorSpec(
        "leaver_key", key=KeySpec("leaver_key", "user", "leaver", EVERYTHING, deactivated=True)
    ),
)
ACTOR = {a.name: a for a in ACTORS}

PERSONAL_GRANTS = (("secrets:read", None), ("projects:read", None), ("members:update", None))
# Inside every actor's power that holds api-keys:manage.
INSIDE = (("secrets:read", "E"), ("environments:read", "E"))
# members:update: outside an admin's role; secrets:read unscoped: outside the environment key.
OUTSIDE = (("members:update", None), ("secrets:read", None), ("projects:read", None))
# For a project key, unscoped means the whole project: outside the environment key.
PROJECT_OUTSIDE = (("secrets:read", None), ("secrets:write", None))

TARGETS: tuple[KeySpec, ...] = (
    KeySpec("owner_personal", "user", "owner", PERSONAL_GRANTS, "projects:read"),
    KeySpec("admin_personal", "user", "admin", PERSONAL_GRANTS, "projects:read"),
    KeySpec("member_personal", "user", "member", PERSONAL_GRANTS, "projects:read"),
    KeySpec("org_in", "org", None, INSIDE, "environments:read"),
    KeySpec("org_out", "org", None, OUTSIDE, "projects:read"),
    KeySpec("svc_in", "svc", "S", INSIDE, "environments:read"),
    KeySpec("svc_out", "svc", "S", OUTSIDE, "projects:read"),
    KeySpec("project_in", "project", "P", INSIDE, "environments:read"),
    KeySpec("project_out", "project", "P", PROJECT_OUTSIDE, "secrets:write"),
)
TARGET = {t.name: t for t in TARGETS}

# "widen" adds this grant (inside every role, so a personal key's cut never hides it).
WIDEN_ADD = ("targets:read", None)

# What each create asks for: each kind, with grants inside and outside some actors' power.
CREATES: tuple[KeySpec, ...] = (
    *(
        KeySpec(f"personal_{person}_{variant}", "user", person, grants)
        for person in ("owner", "admin", "member")
        for variant, grants in (
            ("in", (("secrets:read", None), ("projects:read", None))),
            ("out", (("secrets:read", None), ("members:update", None))),
        )
    ),
    KeySpec("org_in", "org", None, INSIDE),
    KeySpec("org_out", "org", None, OUTSIDE),
    KeySpec("svc_in", "svc", "S", INSIDE),
    KeySpec("svc_out", "svc", "S", OUTSIDE),
    KeySpec("project_in", "project", "P", INSIDE),
    KeySpec("project_out", "project", "P", PROJECT_OUTSIDE),
)
CREATE = {c.name: c for c in CREATES}

SEE = "see"
TAKE_NEUTRAL = ("rename", "narrow", "shorten")  # take away or change nothing: no containment
GIVE = ("widen", "extend", "enable", "rotate")  # rule 1: the actor must contain the key
TAKE = ("disable", "revoke", "bulk_revoke")  # take power away: owners too, on personal keys
ACTIONS: tuple[str, ...] = (SEE, *TAKE_NEUTRAL, *GIVE, *TAKE)


class Outcome(StrEnum):
    ALLOW = "allow"
    NOT_FOUND = "404"  # not seen
    FORBIDDEN = "403 forbidden"  # seen, but rules 2/3 refuse
    INSUFFICIENT = "403 insufficient_scope"  # no api-keys:manage, or containment (rule 1)
    UNAUTHORIZED = "401"  # the acting key has no power at all


@dataclass(frozen=True)
class Expected:
    outcome: Outcome
    reason: str = field(default="", compare=False)

    @property
    def allowed(self) -> bool:
        return self.outcome is Outcome.ALLOW


# --- the rules ---------------------------------------------------------------------------------


def _console_sight(actor: ActorSpec, key: KeySpec) -> bool:
    """Return True when the person acting (or owning the acting key) sees the key in the console."""
    if actor.human is None:
        # An organization or service-account key: no person; rules 2 and 3 alone cut its sight.
        return True
    if actor.role in ("owner", "admin"):
        return True
    return key.personal and key.owner == actor.human


def _rules_allow(actor: ActorSpec, key: KeySpec, action: str) -> bool:
    """Return True when rules 2 and 3 let the actor take this action on the key."""
    if key.personal:
        if actor.human == key.owner:
            return True  # their own personal key, in the console or through their personal key
        # Only owners take power away from another person's personal key, never a non-personal key.
        return action in TAKE and actor.human is not None and actor.role == "owner"
    if actor.is_person or (actor.key and actor.key.personal):
        return actor.role in ("owner", "admin")
    return True  # organization and service-account keys holding api-keys:manage


def sees(actor: ActorSpec, key: KeySpec) -> bool:
    """Return True when the actor sees the key (rule 4)."""
    if not _console_sight(actor, key):
        return False
    if actor.is_person:
        return True
    return any(_rules_allow(actor, key, action) for action in ACTIONS if action != SEE)


def after(key: KeySpec, action: str) -> KeySpec:
    """Return the key as it will be once the action is done (only "widen" changes its grants)."""
    if action == "widen":
        return key.with_grants((*key.grants, WIDEN_ADD))
    if action == "narrow":
        return key.with_grants(tuple(g for g in key.grants if g[0] != key.narrow_drop))
    return key


def _gate(actor: ActorSpec) -> Expected | None:
    """Return the refusal every key action gets from this actor, whatever the key, or None."""
    power = actor.power()
    if power is None:
        return Expected(Outcome.UNAUTHORIZED, "its owner is deactivated: the key has no power")
    if not actor.is_person and not contains(power, (MANAGE, "org")):
        return Expected(Outcome.INSUFFICIENT, "the key does not hold api-keys:manage (rule 5)")
    return None


def _beyond(actor: ActorSpec, grants: frozenset[Grant]) -> list[Grant]:
    power = actor.power()
    return sorted(g for g in grants if not contains(power, g))


def expected(actor: ActorSpec, key: KeySpec, action: str) -> Expected:
    """Return what DESIGN says happens when the actor attempts the action on the key."""
    refused = _gate(actor)
    if refused:
        return refused
    if not sees(actor, key):
        return Expected(Outcome.NOT_FOUND, "the actor does not see this key (rule 4)")
    if action == SEE:
        return Expected(Outcome.ALLOW, "seen")
    if not _rules_allow(actor, key, action):
        rule = "rule 2: personal keys are personal" if key.personal else "rule 3"
        return Expected(Outcome.FORBIDDEN, rule)
    if action in GIVE:
        beyond = _beyond(actor, key_power(after(key, action)))
        if beyond:
            return Expected(Outcome.INSUFFICIENT, f"rule 1: the actor does not hold {beyond}")
    return Expected(Outcome.ALLOW, "rules 1 to 4 allow it")


def expected_create(actor: ActorSpec, new: KeySpec) -> Expected:
    """Return what DESIGN says happens when the actor creates the key `new`."""
    refused = _gate(actor)
    if refused:
        return refused
    if new.personal:
        if actor.human != new.owner:
            return Expected(Outcome.FORBIDDEN, "personal keys are created by their owner only")
    elif actor.human is not None and actor.role not in ("owner", "admin"):
        return Expected(Outcome.FORBIDDEN, "only owners and admins create non-personal keys")
    # Every grant of the new key, as stored (not cut), must lie inside the actor's power.
    beyond = _beyond(actor, key_grants(new))
    if beyond:
        return Expected(Outcome.INSUFFICIENT, f"rule 1: the actor does not hold {beyond}")
    return Expected(Outcome.ALLOW, "rules 1 to 4 allow it")


def table() -> dict[tuple[str, str, str], Expected]:
    """Return the whole table: (actor, key, action) -> expected answer; creates as action
    "create" with the created key's name."""
    rows = {
        (actor.name, key.name, action): expected(actor, key, action)
        for actor in ACTORS
        for key in TARGETS
        for action in ACTIONS
    }
    rows.update(
        {
            (actor.name, new.name, "create"): expected_create(actor, new)
            for actor in ACTORS
            for new in CREATES
        }
    )
    return rows


TABLE = table()
