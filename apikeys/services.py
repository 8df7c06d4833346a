"""Writes for API keys. Each runs in one transaction and records its history row; the plaintext
is returned once by create and rotate and kept nowhere."""

from __future__ import annotations

import enum
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.access import Actor
from accounts.models import (
    NAME_MAX_LENGTH,
    AuditEvent,
    AuditEventType,
    Membership,
    Organization,
    ServiceAccount,
    User,
)
from accounts.services import audit_event, audit_record
from apikeys import authority
from apikeys.authority import Act, records_refusals
from apikeys.models import ApiKey, KeyKind, KeyPolicy, KeyPreset, KeyStatus
from apikeys.permissions import PERMISSIONS, ROLE_PERMISSIONS, ordered
from apikeys.policy import (
    DISABLE_UNUSED_DAYS,
    DISABLE_UNUSED_PROBLEM,
    Policy,
    expiry_problem,
    policy_for,
)
from apikeys.power import ORGANIZATION, Power, beyond, contains
from apikeys.presets import preset_permissions
from apikeys.protections import (
    Budget,
    as_json,
    clean_allowed_ips,
    clean_budget,
    clean_rate_limits,
    loosens,
)
from apikeys.scopes import clean_scopes
from keyportal.validators import validate_display_name
from keyportal_cli.tokens import generate_token, token_digest, token_preview
from projects.models import Project

ROTATION_GRACE = {
    "now": timedelta(0),
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
}


class Unchanged(enum.Enum):
    """What api_key_update is given for a field to leave alone: one value, its own type, so
    `value is UNCHANGED` tells a type checker what `value` is otherwise."""

    UNCHANGED = enum.auto()


UNCHANGED: Final = Unchanged.UNCHANGED
# A value given, or UNCHANGED.
type Maybe[T] = T | Literal[Unchanged.UNCHANGED]

REVOKED_MESSAGE = "This API key has been revoked; it can no longer be changed."
COMPROMISED_MESSAGE = (
    "This API key was reported leaked (compromised) and has been revoked; it can no longer be "
    "changed. Create a new key."
)

Owner = User | ServiceAccount | Project | Organization


def _clean_permissions(permissions: list[str], *, kind: str) -> list[str]:
    """Return the permissions checked against the catalogue and the kind of key, in catalogue
    order. Whether the actor may hand them on is the authority's question, not this one."""
    unknown = sorted(p for p in permissions if p not in PERMISSIONS)
    if unknown:
        raise ValidationError({"permissions": f"Unknown permission: {', '.join(unknown)}."})
    if not permissions:
        raise ValidationError({"permissions": "Choose at least one permission."})
    if kind == KeyKind.PROJECT:
        wide = [p for p in ordered(set(permissions)) if not PERMISSIONS[p].scope_levels]
        if wide:
            listed = ", ".join(wide)
            message = f"A project key cannot hold organization-wide permissions: {listed}."
            raise ValidationError({"permissions": message})
    return ordered(set(permissions))


def _owner_filter(kind: str, owner: Owner) -> Q:
    match kind:
        case KeyKind.USER:
            return Q(owner_user=owner)
        case KeyKind.SERVICE_ACCOUNT:
            return Q(owner_service_account=owner)
        case KeyKind.PROJECT:
            return Q(owner_project=owner)
        case _:
            return Q(kind=KeyKind.ORGANIZATION)


def _check_name(
    *, organization: Organization, kind: str, owner: Owner, name: str, exclude: int | None = None
) -> None:
    # Names are unique per owner among live keys: a revoked or expired key's name can be reused.
    live = ApiKey.objects.filter(
        _owner_filter(kind, owner),
        organization=organization,
        name__iexact=name,
        revoked_at__isnull=True,
    ).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))
    if exclude is not None:
        live = live.exclude(pk=exclude)
    if live.exists():
        raise ValidationError({"name": f"A live key of this owner is already named “{name}”."})


def _check_name_shown(name: str) -> None:
    """Refuse a name too long, or one that would not show as written (control characters,
    text-direction overrides)."""
    if len(name) > NAME_MAX_LENGTH:
        raise ValidationError({"name": f"Name must be at most {NAME_MAX_LENGTH} characters."})
    try:
        validate_display_name(name)
    except ValidationError as error:
        raise ValidationError({"name": error.messages}) from None


def _lock_active_service_account(account: ServiceAccount) -> None:
    """Lock the account's row, or refuse when it is deactivated.

    A deactivation running at the same time then either sees the new key and revokes it, or
    commits first and the new key is refused: no key outlives its account's deactivation.
    """
    if (
        not ServiceAccount.objects.select_for_update()
        .filter(pk=account.pk, is_active=True)
        .exists()
    ):
        raise ValidationError("This service account is deactivated; reactivate it to create keys.")


def _check_owner(organization: Organization, kind: str, owner: Owner | None) -> Owner:
    """Return the owner; refuse one missing, not of the kind, or from another organization
    (deactivated accounts: see api_key_create). An organization key's owner is `organization`."""
    match kind:
        case KeyKind.USER:
            ok = (
                isinstance(owner, User)
                and Membership.objects.filter(organization=organization, user=owner).exists()
            )
        case KeyKind.SERVICE_ACCOUNT:
            ok = isinstance(owner, ServiceAccount) and owner.organization_id == organization.pk
        case KeyKind.PROJECT:
            ok = isinstance(owner, Project) and owner.organization_id == organization.pk
        case KeyKind.ORGANIZATION:
            owner, ok = organization, True
        case _:
            raise ValidationError({"kind": "Unknown kind of key."})
    if not ok or owner is None:
        raise ValidationError("The key's owner is not part of this organization.")
    return owner


def _check_expiry(
    policy: Policy, expires_at: datetime | None, start: datetime | None = None
) -> None:
    problem = expiry_problem(policy, expires_at, start=start)
    if problem:
        raise ValidationError({"expiration": problem})


def _record(actor: Actor, api_key: ApiKey, action: AuditEventType, **detail: Any) -> None:
    audit_record(
        actor=actor,
        organization=api_key.organization,
        action=action,
        target=api_key,
        detail={"name": api_key.name, "preview": api_key.preview, "kind": api_key.kind, **detail},
    )


@records_refusals
def api_key_create(
    *,
    actor: Actor,
    organization: Organization,
    kind: str,
    owner: Owner | None = None,
    name: str = "",
    permissions: list[str] | None = None,
    scopes: dict | None = None,
    preset: str = KeyPreset.CUSTOM,
    expires_at: datetime | None = None,
    allowed_ips: Sequence[str] | str = (),
    rate_limits: list | None = None,
    budget: dict | None = None,
) -> tuple[ApiKey, str]:
    """Create a key and return it with its plaintext token, which is never stored or shown again.

    A preset other than custom chooses the permissions (apikeys.presets). The actor must hold
    every grant the key will hold (DESIGN rule 1), and personal keys are made only by the
    person they belong to (rule 2). Protections (apikeys.protections): the addresses it works
    from, its rate limits (None: the policy's default for the kind; [] none) and its budget
    ({"amount", "refill", "refill_amount"}, or None).
    """
    owner = _check_owner(organization, kind, owner)
    name = name.strip() or f"key-{timezone.now():%Y%m%d}-{secrets.token_hex(3)}"
    _check_name_shown(name)
    # The owner's own field: _check_owner made the owner's type the kind's.
    owner_user = owner if isinstance(owner, User) else None
    account = owner if isinstance(owner, ServiceAccount) else None
    project = owner if isinstance(owner, Project) else None
    if preset != KeyPreset.CUSTOM:
        permissions, scopes = _preset_grants(actor, organization, kind, owner, preset), {}
    permissions = _clean_permissions(permissions or [], kind=kind)
    scopes = clean_scopes(
        scopes or {}, permissions=permissions, organization=organization, project=project
    )
    future = ApiKey(
        organization=organization,
        kind=kind,
        owner_user=owner_user,
        owner_project=project,
        permissions=permissions,
        scopes=scopes,
        preset=preset,
    )
    authority.check_create(
        actor,
        organization=organization,
        kind=kind,
        owner_user_id=owner_user.pk if owner_user is not None else None,
        power=authority.key_power(future, cut=False),
    )
    policy = policy_for(organization=organization, kind=kind)
    _check_expiry(policy, expires_at)
    if rate_limits is None:
        rate_limits = [policy.default_rate_limit] if policy.default_rate_limit else []
    protections, found = _clean_protections(allowed_ips, rate_limits, budget)
    token = generate_token(kind)
    with transaction.atomic():
        if account is not None:
            _lock_active_service_account(account)
        _check_name(organization=organization, kind=kind, owner=owner, name=name)
        api_key = ApiKey.objects.create(
            organization=organization,
            kind=kind,
            owner_user=owner_user,
            owner_service_account=account,
            owner_project=project,
            created_by=actor.user,
            name=name,
            digest=token_digest(token),
            preview=token_preview(token),
            permissions=permissions,
            scopes=scopes,
            preset=preset,
            expires_at=expires_at,
            protections=protections,
            budget_remaining=found.amount if found else None,
            budget_period=found.period(timezone.now()) if found else "",
            origin=actor.origin,
        )
        _record(actor, api_key, AuditEventType.API_KEY_CREATED)
    return api_key, token


def _clean_protections(
    allowed_ips: Sequence[str] | str, rate_limits: list, budget: dict | None
) -> tuple[dict, Budget | None]:
    """Return the protections as the row stores them, and the budget; raise ValidationError
    naming each bad field (all of them, so a form shows every problem at once)."""
    problems: dict[str, list[str]] = {}
    cleaned: dict = {}
    for field, clean in (
        ("allowed_ips", lambda: clean_allowed_ips(allowed_ips or [])),
        ("rate_limits", lambda: clean_rate_limits(rate_limits or [])),
        ("budget", lambda: clean_budget(**budget) if budget else None),
    ):
        try:
            cleaned[field] = clean()
        except ValidationError as error:
            for name, messages in error.message_dict.items():
                problems.setdefault(name, []).extend(messages)
    if problems:
        raise ValidationError(problems)
    return as_json(**cleaned), cleaned["budget"]


def _preset_grants(
    actor: Actor, organization: Organization, kind: str, owner: Owner | None, preset: str
) -> list[str]:
    """Return the permissions a preset gives: for "Same as my role" the owner's role holds,
    for "Allow all" what the actor holds over the whole organization."""
    holds: frozenset[str] = frozenset()
    if preset == KeyPreset.ROLE and kind == KeyKind.USER:
        role = authority.membership_role(owner.pk if owner is not None else None, organization.pk)
        holds = ROLE_PERMISSIONS.get(role, frozenset()) if role else frozenset()
    elif preset == KeyPreset.ALL:
        power = authority.actor_power(actor, organization.pk)
        holds = frozenset(p for p in power.permissions if ORGANIZATION in power.scopes(p))
    return ordered(preset_permissions(preset, kind, holds))


def final_message(api_key: ApiKey) -> str:
    """Return why a revoked key cannot be changed: it was revoked, or reported leaked."""
    return COMPROMISED_MESSAGE if api_key.is_compromised else REVOKED_MESSAGE


def _locked(actor: Actor, api_key: ApiKey) -> ApiKey:
    """Lock the key's row and return it as it is now, if the actor may see it and it is live."""
    locked = ApiKey.objects.select_for_update().select_related("organization").get(pk=api_key.pk)
    if locked.pk != actor.key_id:  # a key acting on itself needs to see nothing
        authority.check(actor, Act.SEE, locked)
    if locked.is_revoked:
        raise ValidationError(final_message(locked))
    return locked


def _expiry_act(before: datetime | None, after: datetime | None) -> Act | None:
    """Return whether a new expiry extends the key's life, shortens it, or changes nothing."""
    if after == before:
        return None
    if before is not None and (after is None or after > before):
        return Act.EXTEND
    return Act.NARROW


def _preset_act(before: str, after: str) -> Act | None:
    """Return what a new preset does: following the owner's role may gain power as the role
    grows (a widening); leaving it can only keep or lose power."""
    if after == before:
        return None
    return Act.WIDEN if after == KeyPreset.ROLE else Act.NARROW


def _protections_act(api_key: ApiKey, after: dict) -> Act | None:
    """Return whether new protections loosen the key (more addresses, higher or fewer limits,
    a larger or refilled budget), tighten it, or change nothing."""
    if after == api_key.protections:
        return None
    return (
        Act.LOOSEN
        if loosens(api_key.protections, after, api_key.budget_remaining)
        else (Act.NARROW)
    )


def _grants_act(before: Power, after: Power) -> Act | None:
    """Return whether new grants widen the key, narrow it, or change nothing."""
    if after == before:
        return None
    return Act.NARROW if contains(before, after) is None else Act.WIDEN


@records_refusals
def api_key_update(
    *,
    actor: Actor,
    api_key: ApiKey,
    name: Maybe[str] = UNCHANGED,
    status: Maybe[str] = UNCHANGED,
    permissions: Maybe[list[str]] = UNCHANGED,
    scopes: Maybe[dict] = UNCHANGED,
    preset: Maybe[str] = UNCHANGED,
    expires_at: Maybe[datetime | None] = UNCHANGED,
    allowed_ips: Maybe[Sequence[str] | str] = UNCHANGED,
    rate_limits: Maybe[list] = UNCHANGED,
    budget: Maybe[dict | None] = UNCHANGED,
    reason: str = "",
) -> ApiKey:
    """Change what is given of a key's name, status, permissions, scopes, preset and expiry.

    Each change is an act the rules judge (DESIGN, "Authority over keys"): renaming and
    narrowing need to manage the key; disabling may also be done by organization owners to
    personal keys; widening, extending and enabling need the actor to hold every grant the
    key will hold. Permissions given without scopes keep the scopes they had; given without a
    preset, they are a custom choice. A preset other than custom chooses the permissions.
    Protections given replace the key's (as on create; `budget` None removes it, a budget
    starts counting again from its amount); more addresses, higher limits or a larger budget
    loosen the key, which needs the actor to hold every grant it holds.
    A revoked key cannot be changed. A `reason` (the stale-key policy's) goes into the history.
    """
    if status is not UNCHANGED and status not in KeyStatus.values:
        raise ValidationError({"status": "Choose Active or Disabled."})
    with transaction.atomic():
        api_key = _locked(actor, api_key)
        organization = api_key.organization
        values = {
            "name": api_key.name if name is UNCHANGED else (name.strip() or api_key.name),
            "status": api_key.status if status is UNCHANGED else status,
            "permissions": api_key.permissions,
            "scopes": api_key.scopes,
            "preset": api_key.preset,
            "expires_at": api_key.expires_at if expires_at is UNCHANGED else expires_at,
            "protections": api_key.protections,
        }
        found: Maybe[Budget | None] = UNCHANGED
        if any(v is not UNCHANGED for v in (allowed_ips, rate_limits, budget)):
            current = api_key.protections
            new, found = _clean_protections(
                current.get("allowed_ips", []) if allowed_ips is UNCHANGED else allowed_ips,
                current.get("rate_limits", []) if rate_limits is UNCHANGED else rate_limits,
                None if budget is UNCHANGED else budget,
            )
            if budget is UNCHANGED:
                found = UNCHANGED
                new = {k: v for k, v in new.items() if k != "budget"}
                if "budget" in current:
                    new["budget"] = current["budget"]
            values["protections"] = new
        if name is not UNCHANGED:
            # Only a new name: an old one must not stop a key from being disabled or revoked.
            _check_name_shown(values["name"])
        if preset is not UNCHANGED and preset != KeyPreset.CUSTOM:
            permissions = _preset_grants(actor, organization, api_key.kind, api_key.owner, preset)
            scopes = {}
        if preset is not UNCHANGED or permissions is not UNCHANGED or scopes is not UNCHANGED:
            # Permissions or scopes chosen by hand make the choice custom: a preset key would
            # not obey them (a "Same as my role" key holds the whole role, unscoped).
            values["preset"] = KeyPreset.CUSTOM if preset is UNCHANGED else preset
        if permissions is not UNCHANGED or scopes is not UNCHANGED:
            if permissions is not UNCHANGED:
                values["permissions"] = _clean_permissions(permissions, kind=api_key.kind)
            wanted = (
                {p: refs for p, refs in api_key.scopes.items() if p in values["permissions"]}
                if scopes is UNCHANGED
                else scopes
            )
            values["scopes"] = clean_scopes(
                wanted,
                permissions=values["permissions"],
                organization=organization,
                project=api_key.owner_project,
            )
        project_id = api_key.owner_project_id
        before = Power.of_grants(api_key.permissions, api_key.scopes, project_id=project_id)
        after = Power.of_grants(values["permissions"], values["scopes"], project_id=project_id)
        changes = [
            Act.RENAME if values["name"] != api_key.name else None,
            _grants_act(before, after),
            _expiry_act(api_key.expires_at, values["expires_at"]),
            {KeyStatus.DISABLED: Act.DISABLE, KeyStatus.ACTIVE: Act.ENABLE}.get(values["status"])
            if values["status"] != api_key.status
            else None,
            _preset_act(api_key.preset, values["preset"]),
            _protections_act(api_key, values["protections"]),
        ]
        # What the key will hold, cut to its owner's role if personal; and what the edit adds,
        # uncut: nobody stores in a key a grant they do not hold, even one the role hides.
        will_hold = authority.key_power(_with(api_key, values)).union(beyond(before, after))
        acts = sorted({a for a in changes if a}, key=list(Act).index)
        if not acts:
            # Nothing changes: still an edit only those who may make it attempt (a status
            # given alone is that status's act), and nothing is saved or recorded.
            given = {"name": name, "permissions": permissions, "scopes": scopes}
            alone = all(value is UNCHANGED for value in given.values())
            status_act = Act.DISABLE if values["status"] == KeyStatus.DISABLED else Act.ENABLE
            noop = status_act if alone and status is not UNCHANGED else Act.RENAME
            authority.check(actor, noop, api_key, after=will_hold)
            return api_key
        for act in acts:
            authority.check(actor, act, api_key, after=will_hold)
        if values["expires_at"] != api_key.expires_at:
            _check_expiry(
                policy_for(organization=organization, kind=api_key.kind), values["expires_at"]
            )
        _check_name(
            organization=organization,
            kind=api_key.kind,
            owner=api_key.owner,
            name=values["name"],
            exclude=api_key.pk,
        )
        changed = [field for field, value in values.items() if getattr(api_key, field) != value]
        fields = list(values)
        if found is not UNCHANGED:
            # A budget set anew counts from its amount, in the period it is set in.
            values["budget_remaining"] = found.amount if found else None
            values["budget_period"] = found.period(timezone.now()) if found else ""
            fields += ["budget_remaining", "budget_period"]
        for field, value in values.items():
            setattr(api_key, field, value)
        api_key.save(update_fields=fields)
        # The new status goes with a status change: the history says "Disabled" or "Enabled".
        status_detail = {"status": api_key.status} if "status" in changed else {}
        if reason:
            status_detail["reason"] = reason
        _record(actor, api_key, AuditEventType.API_KEY_UPDATED, changed=changed, **status_detail)
    return api_key


def _with(api_key: ApiKey, values: dict) -> ApiKey:
    """Return an unsaved copy of the key holding `values`, to judge what it will hold."""
    future = ApiKey(
        **{f.attname: getattr(api_key, f.attname) for f in ApiKey._meta.concrete_fields}
    )
    for field, value in values.items():
        setattr(future, field, value)
    return future


@records_refusals
def api_key_rotate(*, actor: Actor, api_key: ApiKey, grace: str = "now") -> tuple[ApiKey, str]:
    """Give the key a new secret; the old one stops now or at the end of the grace period.

    A rotation hands over the key's power, so the actor must hold all of it (rule 1).
    """
    if grace not in ROTATION_GRACE:
        raise ValidationError(
            {"grace": "Choose when the old secret stops: now, 1 hour, 24 hours or 7 days."}
        )
    token = generate_token(api_key.kind)
    with transaction.atomic():
        api_key = _locked(actor, api_key)
        authority.check(actor, Act.ROTATE, api_key)
        now = timezone.now()
        period = ROTATION_GRACE[grace]
        policy = policy_for(organization=api_key.organization, kind=api_key.kind)
        problem = expiry_problem(policy, api_key.expires_at, start=now)
        if problem:
            raise ValidationError(f"{problem} Set an expiration it allows (Edit), then rotate.")
        api_key.previous_digest = api_key.digest if period else None
        api_key.previous_valid_until = now + period if period else None
        api_key.digest = token_digest(token)
        api_key.preview = token_preview(token)
        api_key.rotated_at = now
        api_key.save(
            update_fields=[
                "previous_digest",
                "previous_valid_until",
                "digest",
                "preview",
                "rotated_at",
            ]
        )
        _record(actor, api_key, AuditEventType.API_KEY_ROTATED, grace=grace)
    return api_key, token


@records_refusals
def api_key_revoke(*, actor: Actor, api_key: ApiKey, reason: str = "") -> ApiKey:
    """Revoke a key for good, and hide it from lists; its row stays for the history.

    Revoking a revoked key again changes nothing and is no failure: a retried request is
    answered as the first one was. A `reason` (an operator's, manage.py revoke_api_key) goes
    into the history.
    """
    with transaction.atomic():
        api_key = (
            ApiKey.objects.select_for_update().select_related("organization").get(pk=api_key.pk)
        )
        authority.check(actor, Act.REVOKE, api_key)
        if api_key.is_revoked:
            return api_key
        api_key.revoked_at = timezone.now()
        api_key.revoked_by = actor.user
        api_key.previous_digest = None
        api_key.previous_valid_until = None
        api_key.save(
            update_fields=["revoked_at", "revoked_by", "previous_digest", "previous_valid_until"]
        )
        _record(
            actor, api_key, AuditEventType.API_KEY_REVOKED, **({"reason": reason} if reason else {})
        )
    return api_key


def api_key_bulk_revoke(*, actor: Actor, organization: Organization, ids: list[int]) -> int:
    """Revoke the keys among `ids` the actor may revoke, in one transaction; return how many.

    Ids of keys the actor may not revoke (another organization's, another member's personal
    key) and keys already revoked are left alone and not counted; a refused key of the
    organization is recorded in the audit log like any refused attempt. The rows are locked
    first, so of two overlapping revokes at once each key is revoked, and recorded, once.
    Four statements whatever the count: lock, update, history, and the transaction's own.
    """
    with transaction.atomic():
        keys = list(
            authority.revocable_keys(actor, organization)
            .filter(pk__in=ids)
            .select_for_update()
            .only("id", "name", "preview", "kind", "organization_id")
            .order_by("pk")
        )
        if keys:
            ApiKey.objects.filter(pk__in=[key.pk for key in keys]).revoke(by=actor.user)
            AuditEvent.objects.bulk_create(
                audit_event(
                    actor=actor,
                    organization=organization,
                    action=AuditEventType.API_KEY_REVOKED,
                    target=key,
                    detail={
                        "name": key.name,
                        "preview": key.preview,
                        "kind": key.kind,
                        "bulk": True,
                    },
                )
                for key in keys
            )
    refused = (
        ApiKey.objects.filter(organization=organization, pk__in=ids, revoked_at__isnull=True)
        .exclude(pk__in=[key.pk for key in keys])
        .select_related("organization")
    )
    for api_key in refused:
        try:
            authority.check(actor, Act.REVOKE, api_key)
        except authority.Refused as refusal:
            authority.record_refusal(actor, refusal, organization)
    return len(keys)


def key_policy_update(
    *,
    actor: Actor,
    organization: Organization,
    kind: str,
    require_expiry: bool,
    max_lifetime_days: int | None,
    disable_unused_after_days: int | None = None,
    default_rate_limit: dict | None = None,
) -> KeyPolicy:
    """Set the organization's policy for one kind of key; existing keys are flagged, not changed
    (the worker, not this, disables unused keys). `default_rate_limit` ({"limit", "window"}, or
    None) is the rate limit new keys of the kind start with."""
    if kind not in KeyKind.values:
        raise ValidationError({"kind": "Unknown kind of key."})
    if max_lifetime_days is not None and not 1 <= max_lifetime_days <= 3650:
        raise ValidationError({"max_lifetime_days": "Enter a number of days from 1 to 3650."})
    if disable_unused_after_days is not None and (
        disable_unused_after_days not in DISABLE_UNUSED_DAYS
    ):
        raise ValidationError({"disable_unused_after_days": DISABLE_UNUSED_PROBLEM})
    window = None
    if default_rate_limit:
        try:
            (window,) = clean_rate_limits([default_rate_limit])
        except ValidationError as error:
            raise ValidationError({"default_rate_limit": error.messages}) from None
    with transaction.atomic():
        policy, _ = KeyPolicy.objects.update_or_create(
            organization=organization,
            kind=kind,
            defaults={
                "require_expiry": require_expiry,
                "max_lifetime_days": max_lifetime_days,
                "disable_unused_after_days": disable_unused_after_days,
                "default_rate_limit": window.limit if window else None,
                "default_rate_window": window.window if window else "",
            },
        )
        audit_record(
            actor=actor,
            organization=organization,
            action=AuditEventType.KEY_POLICY_UPDATED,
            target=policy,
            detail={
                "kind": kind,
                "require_expiry": require_expiry,
                "max_lifetime_days": max_lifetime_days,
                "disable_unused_after_days": disable_unused_after_days,
                "default_rate_limit": window.describe() if window else None,
            },
        )
    return policy
