"""Power: the grants (permission, scope) an actor or a key holds, and containment between them.

DESIGN.md, "Authority over keys": a person's power is their role's permissions over the whole
organization; a key's power is its own grants (a project key's implicitly narrowed to its
project), cut for a personal key to its owner's current role. Power contains a grant when it
holds the permission at that scope or at a scope above it: organization > team > project >
target > environment.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from apikeys.permissions import ALL, LEVELS, ROLE_PERMISSIONS, ordered
from projects.models import Environment, Project, Target


@dataclass(frozen=True, order=True)
class Scope:
    """Where a grant applies: the whole organization (no id), or one team, project, target or
    environment of it."""

    level: str
    id: int | None = None

    def label(self) -> str:
        if self.id is None:
            return "the whole organization"
        return f"{self.level} {self.id}"


ORGANIZATION = Scope("organization")


@dataclass(frozen=True)
class Grant:
    permission: str
    scope: Scope = ORGANIZATION

    def describe(self) -> str:
        return f"{self.permission} on {self.scope.label()}"


class Power:
    """A set of grants, by permission: each permission is held at one or more scopes."""

    __slots__ = ("_held",)

    def __init__(self, held: Mapping[str, Iterable[Scope]] | None = None):
        self._held: dict[str, frozenset[Scope]] = {
            permission: frozenset(scopes) for permission, scopes in (held or {}).items() if scopes
        }

    @classmethod
    def everything(cls) -> Power:
        """Return every permission over the whole organization (an owner's, an operator's)."""
        return cls.over_organization(ALL)

    @classmethod
    def over_organization(cls, permissions: Iterable[str]) -> Power:
        return cls({permission: (ORGANIZATION,) for permission in permissions})

    @classmethod
    def of_role(cls, role: str | None) -> Power:
        """Return a role's power: its permissions over the whole organization (none: no role)."""
        return cls.over_organization(ROLE_PERMISSIONS.get(role, frozenset()))

    @classmethod
    def of_grants(
        cls,
        permissions: Iterable[str],
        scopes: Mapping[str, list[dict]] | None = None,
        *,
        project_id: int | None = None,
    ) -> Power:
        """Return the power a key's stored permissions and scopes give it.

        A permission without scopes is held over the whole organization, or over the key's
        project for a project key (which reaches nothing outside it).
        """
        scopes = scopes or {}
        default = ORGANIZATION if project_id is None else Scope("project", project_id)
        held: dict[str, list[Scope]] = {}
        for permission in permissions:
            refs = scopes.get(permission) or []
            held[permission] = [Scope(ref["type"], ref["id"]) for ref in refs] or [default]
        return cls(held)

    @property
    def permissions(self) -> frozenset[str]:
        return frozenset(self._held)

    def scopes(self, permission: str) -> frozenset[Scope]:
        return self._held.get(permission, frozenset())

    def grants(self) -> Iterator[Grant]:
        """Yield every grant, permissions in catalogue order, scopes in a stable order."""
        for permission in ordered(self.permissions):
            for scope in sorted(self._held[permission]):
                yield Grant(permission, scope)

    def cut_to(self, permissions: Iterable[str]) -> Power:
        """Return this power without the permissions not in `permissions` (a role's cut)."""
        allowed = set(permissions)
        return Power({p: s for p, s in self._held.items() if p in allowed})

    def holds(self, permission: str) -> bool:
        return permission in self._held

    def missing(self, other: Power, ancestry: Ancestry) -> Grant | None:
        """Return the first grant of `other` this power does not contain, or None."""
        for grant in other.grants():
            if not self._contains(grant, ancestry):
                return grant
        return None

    def _contains(self, grant: Grant, ancestry: Ancestry) -> bool:
        held = self._held.get(grant.permission)
        if not held:
            return False
        if ORGANIZATION in held or grant.scope in held:
            return True
        if grant.scope == ORGANIZATION:
            return False
        return any(scope in held for scope in ancestry.above(grant.scope))

    def union(self, other: Power) -> Power:
        permissions = self.permissions | other.permissions
        return Power({p: self.scopes(p) | other.scopes(p) for p in permissions})

    def scoped_grants(self) -> set[Scope]:
        """Return every scope narrower than the organization that this power names."""
        return {scope for scopes in self._held.values() for scope in scopes if scope.id is not None}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Power) and self._held == other._held

    def __hash__(self) -> int:
        return hash(frozenset(self._held.items()))

    def __repr__(self) -> str:
        return f"Power({', '.join(g.describe() for g in self.grants())})"


class Ancestry:
    """The scopes above each scope, read from the database once per question."""

    def __init__(self, above: Mapping[Scope, frozenset[Scope]]):
        self._above = above

    def above(self, scope: Scope) -> frozenset[Scope]:
        return self._above.get(scope, frozenset())


def ancestry_of(scopes: Iterable[Scope]) -> Ancestry:
    """Return the team, project and target above each scope (at most three queries)."""
    wanted: dict[str, set[int]] = {level: set() for level in LEVELS}
    for scope in scopes:
        if scope.id is not None and scope.level in wanted:
            wanted[scope.level].add(scope.id)
    above: dict[Scope, frozenset[Scope]] = {}
    if wanted["environment"]:
        rows = Environment.objects.filter(pk__in=wanted["environment"]).values_list(
            "pk", "target_id", "target__project_id", "target__project__team_id"
        )
        for pk, target, project, team in rows:
            above[Scope("environment", pk)] = frozenset(
                {Scope("target", target), Scope("project", project), Scope("team", team)}
            )
    if wanted["target"]:
        rows = Target.objects.filter(pk__in=wanted["target"]).values_list(
            "pk", "project_id", "project__team_id"
        )
        for pk, project, team in rows:
            above[Scope("target", pk)] = frozenset({Scope("project", project), Scope("team", team)})
    if wanted["project"]:
        rows = Project.objects.filter(pk__in=wanted["project"]).values_list("pk", "team_id")
        for pk, team in rows:
            above[Scope("project", pk)] = frozenset({Scope("team", team)})
    # Teams have nothing above them but the organization.
    return Ancestry(above)


def beyond(holder: Power, wanted: Power) -> Power:
    """Return the grants of `wanted` that `holder` does not contain (what an edit adds)."""
    ancestry = ancestry_of(wanted.scoped_grants())
    extra: dict[str, list[Scope]] = {}
    for grant in wanted.grants():
        if not holder._contains(grant, ancestry):
            extra.setdefault(grant.permission, []).append(grant.scope)
    return Power(extra)


def contains(holder: Power, wanted: Power) -> Grant | None:
    """Return the first grant of `wanted` that `holder` does not contain, or None.

    The database is read only when `holder` holds a permission at narrower scopes alone and
    `wanted` names narrower scopes of it.
    """
    quick = Ancestry({})
    first = holder.missing(wanted, quick)
    if first is None or first.scope == ORGANIZATION:
        return first
    return holder.missing(wanted, ancestry_of(wanted.scoped_grants()))
