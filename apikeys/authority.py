"""Authority over keys: one rulebook for every door (DESIGN.md, "Authority over keys").

The console, the API, the CLI, the Explorer and the management commands reach keys only through
the services, and the services ask this module before every change; the key lists are built
from `visible_keys`. The rules, for an actor (a person, a key as verified on this request, or
the operator) and a key:

1. No escalation: creating a key, widening its grants, extending its expiry, enabling and
   rotating it need the actor's power to contain every grant the key will hold.
2. Personal keys are personal: only their owner edits or rotates them; organization owners may
   also disable or revoke them; no non-personal key ever touches one.
3. Non-personal keys are managed by owners and admins and by keys holding api-keys:manage;
   taking power away needs no containment.
4. Seeing follows acting: a key sees what its owner sees in the console, cut to what rules 2
   and 3 let it act on. What an actor may not see does not exist for it (404).
5. api-keys:manage opens the key endpoints; rules 1 to 4 decide which keys.
6. The Explorer acts as a key for those who could rotate it.

A refusal raises `Refused`, which every door turns into 404 (hidden), 403 or a message next to
the form; the services record each refusal in the audit log (`record_refusal`).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from functools import wraps

from django.db.models import Q, QuerySet

from accounts.access import Actor, Refused
from accounts.models import AuditEventType, Membership, Organization, Role
from accounts.services import audit_record
from apikeys.models import ApiKey, KeyKind
from apikeys.power import Power, contains

MANAGE = "api-keys:manage"


class Act(StrEnum):
    """What an actor attempts on a key; the audit log records refusals by these names."""

    SEE = "see"
    # An edit of a key the actor may not see: which of the acts below it was is unknown.
    EDIT = "edit"
    CREATE = "create"
    RENAME = "rename"
    NARROW = "narrow"  # fewer grants, narrower scopes, or an earlier expiry
    WIDEN = "widen"  # more grants or wider scopes
    EXTEND = "extend"  # a later expiry, or none at all
    LOOSEN = "loosen"  # fewer protections: more addresses, higher limits, a larger budget
    DISABLE = "disable"
    ENABLE = "enable"
    ROTATE = "rotate"
    REVOKE = "revoke"
    EXPLORE = "explore"

    @property
    def phrase(self) -> str:
        return ACT_PHRASES[self]


ACT_PHRASES = {
    Act.SEE: "see",
    Act.EDIT: "edit",
    Act.CREATE: "create",
    Act.RENAME: "rename",
    Act.NARROW: "narrow",
    Act.WIDEN: "widen the permissions of",
    Act.EXTEND: "extend the expiry of",
    Act.LOOSEN: "loosen the protections of",
    Act.DISABLE: "disable",
    Act.ENABLE: "enable",
    Act.ROTATE: "rotate",
    Act.REVOKE: "revoke",
    Act.EXPLORE: "explore the API as",
}
# Taking power away: organization owners may do it to anyone's personal key (rule 2), and
# nobody needs to hold what the key holds (rule 3).
TAKE_AWAY = frozenset({Act.DISABLE, Act.REVOKE})
# Handing power on or keeping it alive: the actor must hold every grant the key will hold.
GIVE = frozenset(
    {Act.CREATE, Act.WIDEN, Act.EXTEND, Act.LOOSEN, Act.ENABLE, Act.ROTATE, Act.EXPLORE}
)


# --- who the actor is, and what it holds ---------------------------------------------------


def _role(actor: Actor, organization_id: int) -> str | None:
    """Return the role of the person the actor stands for in the organization, or None.

    A person: their own. A personal key: its owner's current role (read with the key on the
    hot path). A non-personal key stands for no person.
    """
    if actor.key is not None:
        key = actor.key
        if key.kind != KeyKind.USER or key.organization_id != organization_id:
            return None
        if hasattr(key, "owner_role"):
            role: str | None = key.owner_role  # the lookup's annotation (apikeys.verification)
            return role
        return membership_role(key.owner_user_id, organization_id)
    if actor.user is None:
        return None
    membership = actor.membership
    if membership is not None and membership.organization_id == organization_id:
        return membership.role
    return membership_role(actor.user.pk, organization_id)


def membership_role(user_id: int | None, organization_id: int) -> str | None:
    """Return the person's role in the organization now, or None if not a member."""
    if user_id is None:
        return None
    return (
        Membership.objects.filter(organization_id=organization_id, user_id=user_id)
        .values_list("role", flat=True)
        .first()
    )


def _person(actor: Actor) -> int | None:
    """Return the id of the person the actor stands for: the person acting, or the owner of
    the personal key acting. A non-personal key stands for no one (rule 2)."""
    if actor.key is not None:
        return actor.key.owner_user_id if actor.key.kind == KeyKind.USER else None
    return actor.user.pk if actor.user is not None else None


def actor_power(actor: Actor, organization_id: int) -> Power:
    """Return what the actor holds in the organization."""
    if actor.is_operator:
        return Power.everything()
    if actor.key is not None:
        if actor.key.organization_id != organization_id or actor.key_power is None:
            return Power()
        return actor.key_power
    return Power.of_role(_role(actor, organization_id))


def key_power(api_key: ApiKey, *, cut: bool = True) -> Power:
    """Return what a key holds: its grants, cut to its owner's current role if personal (a key
    "Same as my role" holds that role). `cut=False`: the grants as stored."""
    personal = api_key.kind == KeyKind.USER
    if api_key.follows_role:
        return Power.of_role(_owner_role(api_key))
    power = Power.of_grants(
        api_key.permissions, api_key.scopes, project_id=api_key.owner_project_id
    )
    if not personal or not cut:
        return power
    return power.cut_to(Power.of_role(_owner_role(api_key)).permissions)


def _owner_role(api_key: ApiKey) -> str | None:
    if hasattr(api_key, "owner_role"):  # read with the key (the lookup, the key lists)
        role: str | None = api_key.owner_role
        return role
    return membership_role(api_key.owner_user_id, api_key.organization_id)


def manages_others(actor: Actor, organization: Organization) -> bool:
    """Return True when the actor manages organization, project and service-account keys."""
    return _manages_others(actor, organization.pk)


def _manages_others(actor: Actor, organization_id: int) -> bool:
    """Return True when the actor manages non-personal keys (rule 3)."""
    if actor.is_operator:
        return True
    if actor.key is not None and actor.key.kind != KeyKind.USER:
        return actor.key.organization_id == organization_id
    return _role(actor, organization_id) in (Role.OWNER, Role.ADMIN)


def _is_org_owner(actor: Actor, organization_id: int) -> bool:
    return _role(actor, organization_id) == Role.OWNER


def _needs_manage(actor: Actor, organization_id: int) -> bool:
    """Return True when the actor is a key without api-keys:manage (rule 5)."""
    return actor.key is not None and not actor_power(actor, organization_id).holds(MANAGE)


# --- the rules ------------------------------------------------------------------------------


def sees(actor: Actor, api_key: ApiKey) -> bool:
    """Return True when the key exists for the actor (rule 4 for keys, the role table for
    people)."""
    org = api_key.organization_id
    if actor.is_operator:
        return True
    if actor.key is not None:
        if actor.key.organization_id != org or _needs_manage(actor, org):
            return False
        if api_key.kind == KeyKind.USER:
            person = _person(actor)
            return person is not None and (
                person == api_key.owner_user_id or _is_org_owner(actor, org)
            )
        return _manages_others(actor, org)
    role = _role(actor, org)
    if role in (Role.OWNER, Role.ADMIN):
        return True
    return (
        role is not None
        and api_key.kind == KeyKind.USER
        and api_key.owner_user_id == (_person(actor))
    )


def check(actor: Actor, act: Act, api_key: ApiKey, *, after: Power | None = None) -> None:
    """Raise Refused unless the actor may do `act` to the key.

    `after` is the power the key will hold once the act is done (a widened edit); by default
    the key's own, which enabling, extending, rotating and exploring keep alive or hand on.
    """
    org = api_key.organization_id
    if actor.key is not None and actor.key.pk == api_key.pk and act in TAKE_AWAY:
        return  # a key may always give up its own power (the CLI's logout)
    if not sees(actor, api_key):
        raise Refused("No such API key.", act=act, api_key=api_key, hidden=True)
    if act == Act.SEE or actor.is_operator:
        return
    if api_key.kind == KeyKind.USER:
        if _person(actor) != api_key.owner_user_id:
            if act in TAKE_AWAY and _is_org_owner(actor, org):
                return
            raise Refused(_personal_message(act), act=act, api_key=api_key)
    elif not _manages_others(actor, org):
        raise Refused(
            f"Only owners and admins can {act.phrase} this key.", act=act, api_key=api_key
        )
    if act in GIVE:
        _check_not_outgoing(actor, act, api_key)
        _check_contains(actor, act, org, after or key_power(api_key), api_key=api_key)


def _personal_message(act: Act) -> str:
    if act in TAKE_AWAY:
        return (
            f"Only its owner or an owner of the organization can {act.phrase} "
            "another person's personal key."
        )
    return f"Only its owner can {act.phrase} a personal key."


def _check_not_outgoing(actor: Actor, act: Act, api_key: ApiKey | None) -> None:
    # A secret on its way out (a leaked one, perhaps: why it was rotated) keeps its power for
    # the grace period, but may not mint, rotate or prolong anything: else it could rotate its
    # own key and lock out the holder of the new secret.
    if actor.key_previous_secret:
        raise Refused(
            "This API key was sent with its previous secret, which works only until its grace "
            f"period ends: it cannot {act.phrase} keys. Use the new secret.",
            act=act,
            api_key=api_key,
        )


def _check_contains(
    actor: Actor, act: Act, organization_id: int, wanted: Power, *, api_key: ApiKey | None
) -> None:
    missing = contains(actor_power(actor, organization_id), wanted)
    if missing is None:
        return
    who, it, does = ("This API key", "it", "does") if actor.key else ("You", "you", "do")
    if act in (Act.CREATE, Act.WIDEN):
        message = f"{who} cannot give a key what {it} {does} not hold: {missing.describe()}."
    elif actor.key:
        message = (
            f"This API key cannot {act.phrase} that key: that key holds "
            f"{missing.describe()}, which this API key does not hold."
        )
    else:
        message = (
            f"You cannot {act.phrase} this key: it holds {missing.describe()}, "
            "which you do not hold."
        )
    raise Refused(
        message,
        act=act,
        api_key=api_key,
        permission=missing.permission,
        detail={"missing": missing.describe()},
    )


def check_create(
    actor: Actor, *, organization: Organization, kind: str, owner_user_id: int | None, power: Power
) -> None:
    """Raise Refused unless the actor may create a key of `kind` holding `power` (rules 1-3)."""
    org = organization.pk
    if actor.is_operator:
        return
    if actor.key is not None and (actor.key.organization_id != org or _needs_manage(actor, org)):
        raise Refused(
            f"The API key lacks the permission {MANAGE}.", act=Act.CREATE, permission=MANAGE
        )
    if kind == KeyKind.USER:
        if _person(actor) is None or _person(actor) != owner_user_id:
            raise Refused(
                "Personal keys are created only by the person they belong to.", act=Act.CREATE
            )
        if _role(actor, org) is None:
            raise Refused("Only members of the organization have personal keys.", act=Act.CREATE)
    elif not _manages_others(actor, org):
        raise Refused(
            "Only owners and admins can create organization, project and service-account keys.",
            act=Act.CREATE,
        )
    _check_not_outgoing(actor, Act.CREATE, None)
    _check_contains(actor, Act.CREATE, org, power, api_key=None)


# --- what each actor lists --------------------------------------------------------------------


def visible_keys(actor: Actor, organization: Organization) -> QuerySet[ApiKey]:
    """Return the organization's keys that exist for the actor, revoked ones included.

    The same rules as `sees`, as one filter: the console's tables and the API's list show
    exactly these.
    """
    keys = ApiKey.objects.filter(organization=organization)
    return keys.filter(_as_q(_visible(actor, organization.pk)))


def _visible(actor: Actor, org: int) -> Q | bool:
    if actor.is_operator:
        return True
    person = _person(actor)
    own = Q(kind=KeyKind.USER, owner_user_id=person) if person is not None else None
    if actor.key is not None:
        if actor.key.organization_id != org or _needs_manage(actor, org):
            return False
        if _is_org_owner(actor, org):
            return True
        if _manages_others(actor, org):
            return ~Q(kind=KeyKind.USER) | own if own is not None else ~Q(kind=KeyKind.USER)
        return own if own is not None else False
    role = _role(actor, org)
    if role in (Role.OWNER, Role.ADMIN):
        return True
    return own if role is not None and own is not None else False


def revocable_keys(actor: Actor, organization: Organization) -> QuerySet[ApiKey]:
    """Return the live keys the actor may revoke, as `check(actor, Act.REVOKE, key)` says."""
    keys = ApiKey.objects.filter(organization=organization, revoked_at__isnull=True)
    org = organization.pk
    seen = _visible(actor, org)
    if seen is False or actor.is_operator or _is_org_owner(actor, org):
        condition = seen
    else:
        # Beyond seeing: only organization owners revoke other people's personal keys.
        person = _person(actor)
        allowed = Q(kind=KeyKind.USER, owner_user_id=person) if person is not None else Q(pk__in=[])
        if _manages_others(actor, org):
            allowed |= ~Q(kind=KeyKind.USER)
        condition = allowed if seen is True else allowed & seen
    if condition is not True and actor.key is not None and actor.key.organization_id == org:
        # A key may always give up its own power.
        condition = Q(pk=actor.key.pk) | _as_q(condition)
    return keys.filter(_as_q(condition))


def _as_q(condition: Q | bool) -> Q:
    """Return a filter for a condition that may be "every key" (True) or "none" (False).

    Not `Q()` for "every key" inside an OR: Django drops an empty Q from `a | Q()`.
    """
    if condition is True:
        return Q()
    return Q(pk__in=[]) if condition is False else condition


# --- refusals in the audit log ----------------------------------------------------------------


def record_refusal(actor: Actor, refused: Refused, organization: Organization | None) -> None:
    """Write the refusal to the organization's audit log: actor, door, key and act."""
    api_key = refused.api_key
    organization = organization or (api_key.organization if api_key else None)
    if organization is None or actor.is_operator:
        return
    detail = {
        "action": str(refused.act),
        "door": actor.origin,
        "reason": refused.message,
        **refused.detail,
    }
    if api_key is not None:
        detail.update(name=api_key.name, preview=api_key.preview, kind=api_key.kind)
    audit_record(
        actor=actor,
        organization=organization,
        action=AuditEventType.API_KEY_REFUSED,
        target=api_key if api_key is not None else organization,
        detail=detail,
    )


def records_refusals[**P, R](service: Callable[P, R]) -> Callable[P, R]:
    """Record in the audit log every refusal the service raises, then raise it again.

    The row is written after the service's own transaction has rolled back, so it survives.
    """

    @wraps(service)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return service(*args, **kwargs)
        except Refused as refused:
            organization = kwargs.get("organization")
            record_refusal(kwargs["actor"], refused, organization)  # type: ignore[arg-type]
            raise

    return run


def allowed(actor: Actor, act: Act, api_key: ApiKey) -> bool:
    """Return True when the rules let the actor do `act` to the key (for what a page offers)."""
    return refusal(actor, act, api_key) is None


def refusal(actor: Actor, act: Act, api_key: ApiKey) -> Refused | None:
    """Return why the rules refuse the act, or None; nothing is recorded (a page asking what to
    offer is not an attempt)."""
    try:
        check(actor, act, api_key)
    except Refused as refused:
        return refused
    return None
