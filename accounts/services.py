"""Writes for accounts: each runs in one transaction and records its history row."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from accounts.access import Actor
from accounts.models import (
    INVITATION_LIFETIME_DAYS,
    SERVICE_ACCOUNT_DOMAIN,
    AuditEvent,
    AuditEventType,
    Invitation,
    Membership,
    Organization,
    Role,
    ServiceAccount,
    Team,
    User,
)
from accounts.selectors import user_exists
from accounts.signup import LINK_LIFETIME, SignupRequest, signup_token_make
from apikeys.models import ApiKey, KeyKind
from keyportal.mail import enqueue_mail
from keyportal.validators import validate_display_name

DEFAULT_TEAM_NAME = "General"


def audit_event(
    *,
    actor: Actor,
    organization: Organization,
    action: AuditEventType,
    target: object,
    detail: dict | None = None,
) -> AuditEvent:
    """Return an unsaved history row for an action on `target` (for `bulk_create`)."""
    return AuditEvent(
        organization=organization,
        actor_user=actor.user,
        actor_key_id=actor.key_id,
        actor_label=actor.display,
        origin=actor.origin,
        # An action the enum does not know fails here, not later as a row nobody can filter.
        action=AuditEventType(action),
        target_type=type(target).__name__.lower(),
        target_id=str(getattr(target, "pk", "") or ""),
        target_label=str(target)[:200],
        detail=detail or {},
        ip_address=actor.ip,
    )


def audit_record(
    *,
    actor: Actor,
    organization: Organization,
    action: AuditEventType,
    target: object,
    detail: dict | None = None,
) -> AuditEvent:
    """Write one history row for an action on `target`."""
    event = audit_event(
        actor=actor, organization=organization, action=action, target=target, detail=detail
    )
    event.save(force_insert=True)
    return event


def _unique_slug(base: str, *, exists: Callable[[str], bool]) -> str:
    """Return `base`, or `base-2`, `base-3`... the first one `exists` says is free."""
    base = slugify(base)[:50] or "org"
    candidate, n = base, 1
    while exists(candidate):
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def organization_create(*, actor: Actor, name: str) -> Organization:
    """Create an organization with the acting person as its owner."""
    validate_display_name(name)
    with transaction.atomic():
        slug = _unique_slug(name, exists=lambda s: Organization.objects.filter(slug=s).exists())
        organization = Organization.objects.create(name=name, slug=slug)
        Membership.objects.create(user=actor.user, organization=organization, role=Role.OWNER)
        # Projects live in teams; a first team lets a new owner create a project straight away.
        Team.objects.create(organization=organization, name=DEFAULT_TEAM_NAME)
        audit_record(
            actor=actor,
            organization=organization,
            action=AuditEventType.ORGANIZATION_CREATED,
            target=organization,
        )
    return organization


def organization_rename(*, actor: Actor, organization: Organization, name: str) -> Organization:
    """Rename an organization; its slug, and so its URLs, stay."""
    validate_display_name(name)
    with transaction.atomic():
        previous = organization.name
        organization.name = name
        organization.save(update_fields=["name"])
        audit_record(
            actor=actor,
            organization=organization,
            action=AuditEventType.ORGANIZATION_RENAMED,
            target=organization,
            detail={"from": previous},
        )
    return organization


def user_signup_request(
    *,
    email: str,
    display_name: str,
    organization_name: str,
    confirm_url: Callable[[str], str],
    login_url: str,
) -> None:
    """Email a link to finish signing up or, when the address has an account, a note that
    someone tried, with a link to log in. Nothing is stored; the caller answers the same."""
    validate_display_name(display_name)
    validate_display_name(organization_name)
    email = email.strip().lower()
    if user_exists(email=email):
        subject = "Someone tried to sign up for keyportal with your email"
        template, context = "accounts/email/signup_existing.txt", {"login_url": login_url}
    else:
        token = signup_token_make(SignupRequest(email, display_name, organization_name))
        subject = "Finish signing up for keyportal"
        template, context = "accounts/email/signup_confirm.txt", {"link": confirm_url(token)}
    context |= {"email": email, "lifetime_hours": int(LINK_LIFETIME.total_seconds() // 3600)}
    enqueue_mail(subject=subject, template=template, context=context, recipients=[email])


def user_signup(
    *, email: str, display_name: str, password: str, organization_name: str | None, ip: str = ""
) -> tuple[User, Organization | None]:
    """Create a person and, unless they join by invitation, their first organization."""
    validate_display_name(display_name)
    with transaction.atomic():
        if User.objects.filter(email__iexact=email).exists():
            raise ValidationError(
                {"email": "An account with this email already exists. Log in instead."}
            )
        user = User.objects.create_user(email=email, password=password, display_name=display_name)
        organization = None
        if organization_name:
            organization = organization_create(
                actor=Actor(user=user, ip=ip), name=organization_name
            )
    return user, organization


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invitation_create(
    *,
    actor: Actor,
    organization: Organization,
    email: str,
    role: str,
    accept_url: Callable[[str], str],
) -> tuple[Invitation, str]:
    """Invite an email address; return the invitation and its link, which is never stored."""
    email = email.strip().lower()
    if role not in Role.values:
        raise ValidationError({"role": f"“{role}” is not a role. Choose owner, admin or member."})
    with transaction.atomic():
        if Membership.objects.filter(organization=organization, user__email__iexact=email).exists():
            raise ValidationError({"email": f"{email} is already a member of {organization.name}."})
        pending = Invitation.objects.filter(
            organization=organization,
            email__iexact=email,
            accepted_at__isnull=True,
            revoked_at__isnull=True,
            expires_at__gt=timezone.now(),
        )
        if pending.exists():
            raise ValidationError(
                {"email": f"{email} already has a pending invitation. Revoke it to send a new one."}
            )
        token = secrets.token_urlsafe(32)
        invitation = Invitation.objects.create(
            organization=organization,
            email=email,
            role=role,
            token_digest=_token_digest(token),
            created_by=actor.user,
            expires_at=timezone.now() + timedelta(days=INVITATION_LIFETIME_DAYS),
        )
        audit_record(
            actor=actor,
            organization=organization,
            action=AuditEventType.INVITATION_CREATED,
            target=invitation,
            detail={"email": email, "role": role},
        )
        link = accept_url(token)
        enqueue_mail(
            subject=f"You are invited to {organization.name} on keyportal",
            template="accounts/email/invitation.txt",
            context={
                "inviter": actor.display,
                "organization": organization.name,
                "role": role,
                "link": link,
                "lifetime_days": INVITATION_LIFETIME_DAYS,
            },
            recipients=[email],
        )
    return invitation, link


def invitation_find(*, token: str) -> Invitation | None:
    """Return the invitation a link's token names, whatever its state."""
    return (
        Invitation.objects.select_related("organization", "created_by")
        .filter(token_digest=_token_digest(token))
        .first()
    )


def invitation_problem(*, invitation: Invitation | None, user: User | None = None) -> str | None:
    """Return why the invitation cannot be accepted (by `user`), or None when it can."""
    if invitation is None:
        return "This invitation link is not valid. Ask for a new invitation."
    if invitation.accepted_at is not None:
        return "This invitation has already been used. Log in, or ask for a new invitation."
    if invitation.revoked_at is not None:
        return "This invitation was revoked. Ask for a new invitation."
    if invitation.expires_at <= timezone.now():
        return "This invitation has expired. Ask for a new invitation."
    if user is not None and user.email.lower() != invitation.email.lower():
        return (
            f"This invitation was sent to {invitation.email}, but you are logged in as "
            f"{user.email}. Log in with that address to accept it."
        )
    return None


def invitation_accept(*, invitation: Invitation, actor: Actor) -> Membership:
    """Make the invited person a member with the invitation's role; the link works once."""
    with transaction.atomic():
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
        problem = invitation_problem(invitation=invitation, user=actor.user)
        if problem:
            raise ValidationError(problem)
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = actor.user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
        membership, _ = Membership.objects.get_or_create(
            user=actor.user,
            organization=invitation.organization,
            defaults={"role": invitation.role},
        )
        audit_record(
            actor=actor,
            organization=invitation.organization,
            action=AuditEventType.MEMBER_JOINED,
            target=membership.user,
            detail={"role": membership.role},
        )
    return membership


def invitation_revoke(*, actor: Actor, invitation: Invitation) -> None:
    """Revoke a pending invitation so its link stops working."""
    with transaction.atomic():
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
        audit_record(
            actor=actor,
            organization=invitation.organization,
            action=AuditEventType.INVITATION_REVOKED,
            target=invitation,
            detail={"email": invitation.email},
        )


def _lock_owners(organization: Organization) -> int:
    # Locking the owner rows serializes concurrent demotions and removals of owners.
    return len(
        Membership.objects.select_for_update().filter(organization=organization, role=Role.OWNER)
    )


def membership_change_role(*, actor: Actor, membership: Membership, role: str) -> Membership:
    """Change a member's role; never your own, never leaving the organization without an owner."""
    if role not in Role.values:
        raise ValidationError({"role": f"“{role}” is not a role. Choose owner, admin or member."})
    if actor.user is not None and membership.user_id == actor.user.pk:
        raise ValidationError("You cannot change your own role. Ask another owner.")
    with transaction.atomic():
        owners = _lock_owners(membership.organization)
        membership = Membership.objects.select_for_update().get(pk=membership.pk)
        if membership.role == Role.OWNER and role != Role.OWNER and owners <= 1:
            raise ValidationError("An organization needs at least one owner.")
        previous = membership.role
        membership.role = role
        membership.save(update_fields=["role"])
        audit_record(
            actor=actor,
            organization=membership.organization,
            action=AuditEventType.MEMBER_ROLE_CHANGED,
            target=membership.user,
            detail={"from": previous, "to": role},
        )
    return membership


def membership_remove(*, actor: Actor, membership: Membership) -> None:
    """Remove a member; never yourself, never the last owner."""
    if actor.user is not None and membership.user_id == actor.user.pk:
        raise ValidationError("You cannot remove yourself from the organization.")
    with transaction.atomic():
        owners = _lock_owners(membership.organization)
        if membership.role == Role.OWNER and owners <= 1:
            raise ValidationError("You cannot remove the last owner of the organization.")
        # Their personal keys in this organization are revoked with them, in one UPDATE.
        revoked = ApiKey.objects.filter(
            organization=membership.organization, kind=KeyKind.USER, owner_user=membership.user
        ).revoke(by=actor.user)
        audit_record(
            actor=actor,
            organization=membership.organization,
            action=AuditEventType.MEMBER_REMOVED,
            target=membership.user,
            detail={"role": membership.role, "keys_revoked": revoked},
        )
        membership.delete()


def _service_account_identifier(name: str, organization: Organization) -> str:
    base = slugify(name)[:50] or "service-account"
    local = _unique_slug(
        base,
        exists=lambda s: ServiceAccount.objects.filter(
            identifier=f"{s}@{organization.slug}.{SERVICE_ACCOUNT_DOMAIN}"
        ).exists(),
    )
    return f"{local}@{organization.slug}.{SERVICE_ACCOUNT_DOMAIN}"


def _name_taken_error(kind: str, name: str) -> ValidationError:
    return ValidationError(
        {"name": f"A {kind} named “{name}” already exists in this organization."}
    )


def service_account_create(
    *, actor: Actor, organization: Organization, name: str, description: str = ""
) -> ServiceAccount:
    """Create a service account with an identifier that reads like an email address."""
    validate_display_name(name)
    try:
        with transaction.atomic():
            account = ServiceAccount.objects.create(
                organization=organization,
                name=name,
                identifier=_service_account_identifier(name, organization),
                description=description,
                created_by=actor.user,
            )
            audit_record(
                actor=actor,
                organization=organization,
                action=AuditEventType.SERVICE_ACCOUNT_CREATED,
                target=account,
            )
    except IntegrityError:
        raise _name_taken_error("service account", name) from None
    return account


def service_account_update(
    *, actor: Actor, service_account: ServiceAccount, name: str, description: str
) -> ServiceAccount:
    """Rename or describe a service account; its identifier never changes."""
    validate_display_name(name)
    try:
        with transaction.atomic():
            service_account.name = name
            service_account.description = description
            service_account.save(update_fields=["name", "description"])
            audit_record(
                actor=actor,
                organization=service_account.organization,
                action=AuditEventType.SERVICE_ACCOUNT_UPDATED,
                target=service_account,
            )
    except IntegrityError:
        raise _name_taken_error("service account", name) from None
    return service_account


def _service_account_keys_revoke(*, actor: Actor, service_account: ServiceAccount) -> int:
    # One UPDATE however many keys: no key is read, so revoking 10,000 costs what revoking 1 does.
    return ApiKey.objects.filter(
        kind=KeyKind.SERVICE_ACCOUNT, owner_service_account=service_account
    ).revoke(by=actor.user)


def service_account_set_active(
    *, actor: Actor, service_account: ServiceAccount, active: bool
) -> int:
    """Deactivate (revoking its live keys) or reactivate a service account; return keys revoked.

    Reactivating brings no key back: revoked is final, so the account needs new keys.
    """
    with transaction.atomic():
        service_account.is_active = active
        service_account.save(update_fields=["is_active"])
        revoked = 0
        detail: dict[str, int] = {}
        if not active:
            revoked = _service_account_keys_revoke(actor=actor, service_account=service_account)
            detail = {"keys_revoked": revoked}
        audit_record(
            actor=actor,
            organization=service_account.organization,
            action=(
                AuditEventType.SERVICE_ACCOUNT_ACTIVATED
                if active
                else AuditEventType.SERVICE_ACCOUNT_DEACTIVATED
            ),
            target=service_account,
            detail=detail,
        )
    return revoked


def service_account_revoke_keys(*, actor: Actor, service_account: ServiceAccount) -> int:
    """Revoke every live key of a service account; return how many were revoked."""
    with transaction.atomic():
        revoked = _service_account_keys_revoke(actor=actor, service_account=service_account)
        audit_record(
            actor=actor,
            organization=service_account.organization,
            action=AuditEventType.SERVICE_ACCOUNT_KEYS_REVOKED,
            target=service_account,
            detail={"keys_revoked": revoked},
        )
    return revoked


def service_account_delete(*, actor: Actor, service_account: ServiceAccount) -> int:
    """Revoke a service account's live keys, then delete it; return how many keys were revoked.

    Its key rows go with it; the history stays, since it names objects by id and label.
    """
    with transaction.atomic():
        # Revoking first gives the history row the exact count of keys that stopped working.
        revoked = _service_account_keys_revoke(actor=actor, service_account=service_account)
        audit_record(
            actor=actor,
            organization=service_account.organization,
            action=AuditEventType.SERVICE_ACCOUNT_DELETED,
            target=service_account,
            detail={
                "identifier": service_account.identifier,
                "name": service_account.name,
                "keys_revoked": revoked,
            },
        )
        service_account.delete()
    return revoked
