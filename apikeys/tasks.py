"""Scheduled jobs about keys: expiry reminders, the stale-key policy and housekeeping.

`manage.py crontask` enqueues each job on its schedule (UTC) and `manage.py db_worker` runs it;
`manage.py run_job NAME [--now ISO]` runs one by hand. Every job is safe to run twice and on
several workers at once: an expiry reminder is claimed first (a KeyNotice row, unique per key,
kind and expiry) and only its claimer enqueues the mail; a stale key is checked again under its
row lock before it is disabled. Each key is handled in a transaction of its own, so a failure
leaves the keys before it done and that key unchanged; the job goes on with the others, raises
JobIncomplete at the end (the worker records the run as failed), and the next run completes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from crontask import cron
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.tasks import task
from django.urls import reverse
from django_tasks_db.models import DBTaskResult

from accounts.access import Actor
from accounts.models import Membership, Origin
from apikeys.models import (
    ApiKey,
    DeviceAuthorization,
    KeyKind,
    KeyNotice,
    KeyPolicy,
    KeyStatus,
    KeyUsage,
    NoticeKind,
    SecretScanningDelivery,
)
from apikeys.selectors import key_recipients, stale_keys
from apikeys.services import api_key_update
from keyportal.jobs import JobIncomplete, as_of, delete_rows, utc_text
from keyportal.mail import enqueue_mail

log = logging.getLogger(__name__)

# When the stale-key policy runs each day (UTC); the key policy page says so.
STALE_KEYS_AT = time(3, 17)
STALE_KEY_POLICY = Actor.operator("keyportal worker (stale-key policy)", origin=Origin.WORKER)
# A CLI polling just after its code expired still gets "expired_token", not "invalid_grant".
DEVICE_AUTHORIZATIONS_KEPT = timedelta(days=1)
# GitHub does not send a secret scanning delivery again after this long.
SCANNING_DELIVERIES_KEPT = timedelta(days=90)


# --- who hears about a key ----------------------------------------------------------------


def _mail_context(api_key: ApiKey) -> dict:
    """Return what both emails say about the key: which one it is, and where it is."""
    path = reverse("api_key_detail", kwargs={"org": api_key.organization.slug, "pk": api_key.pk})
    return {
        "id": api_key.pk,
        "name": api_key.name,
        "preview": api_key.preview,
        "organization": api_key.organization.name,
        "kind": api_key.get_kind_display().lower(),
        "personal": api_key.kind == KeyKind.USER,
        "link": settings.KEYPORTAL_BASE_URL + path,
    }


# --- expiry reminders -----------------------------------------------------------------------


@dataclass(frozen=True)
class Reminder:
    """An email sent when the time a key has left is in (after, within]."""

    kind: NoticeKind
    after: timedelta
    within: timedelta


# The most urgent first: a key due both (made to expire in 20 hours) gets only the 1-day one,
# and both are claimed, so the 7-day one never follows.
REMINDERS = (
    Reminder(NoticeKind.EXPIRES_IN_1_DAY, after=timedelta(0), within=timedelta(days=1)),
    Reminder(NoticeKind.EXPIRES_IN_7_DAYS, after=timedelta(days=1), within=timedelta(days=7)),
)


def _reminded_keys() -> QuerySet[ApiKey]:
    """Return the keys that get reminders: live and enabled, and for personal keys, with an
    active owner who is still a member (a key without one has no power anyway)."""
    member = Membership.objects.filter(
        user=OuterRef("owner_user"), organization=OuterRef("organization")
    )
    return ApiKey.objects.filter(
        ~Q(kind=KeyKind.USER) | Q(Exists(member), owner_user__is_active=True),
        status=KeyStatus.ACTIVE,
        revoked_at__isnull=True,
        compromised_at__isnull=True,
    )


def _due(reminder: Reminder, moment: datetime) -> QuerySet[ApiKey]:
    """Return the keys whose `reminder` is due at `moment` and not yet claimed for their expiry."""
    claimed = KeyNotice.objects.filter(
        api_key=OuterRef("pk"), kind=reminder.kind, expires_at=OuterRef("expires_at")
    )
    return _reminded_keys().filter(
        ~Exists(claimed),
        expires_at__gt=moment + reminder.after,
        expires_at__lte=moment + reminder.within,
    )


def _claim(api_key: ApiKey, kind: NoticeKind) -> bool:
    """Claim the notice of `kind` for the key's expiry; False when another run holds it."""
    try:
        with transaction.atomic():
            KeyNotice.objects.create(api_key=api_key, kind=kind, expires_at=api_key.expires_at)
    except IntegrityError:
        return False
    return True


def _time_left(left: timedelta) -> str:
    hours = left.total_seconds() / 3600
    if hours >= 36:
        return f"in {round(hours / 24)} days"
    if hours >= 1.5:
        return f"in {round(hours)} hours"
    return "within the hour"


def _remind(pk: int, reminder: Reminder, moment: datetime) -> bool:
    """Send the key's reminder unless another run has claimed it; return True if sent."""
    with transaction.atomic():
        api_key = (
            _due(reminder, moment)
            .select_related("organization", "owner_user")
            .filter(pk=pk)
            .first()
        )
        if api_key is None:  # claimed, changed or revoked since it was listed
            return False
        claims = [r.kind for r in REMINDERS if r.within >= reminder.within]
        claimed = [kind for kind in claims if _claim(api_key, kind)]
        recipients = key_recipients(api_key)
        if reminder.kind not in claimed or not recipients:
            return False
        left = _time_left(api_key.expires_at - moment)
        enqueue_mail(
            subject=f"API key “{api_key.name}” in {api_key.organization.name} expires {left}",
            template="apikeys/email/expiry_reminder.txt",
            context=_mail_context(api_key)
            | {"left": left, "expires_at": utc_text(api_key.expires_at)},
            recipients=recipients,
        )
    return True


@cron("7 * * * *")
@task()
def send_expiry_reminders(now: str | None = None) -> dict[str, int]:
    """Remind the people responsible for keys that expire within 7 days, and within 1 day."""
    moment = as_of(now)
    sent = {reminder.kind: 0 for reminder in REMINDERS}
    failed = 0
    for reminder in REMINDERS:
        for pk in list(_due(reminder, moment).order_by("expires_at").values_list("pk", flat=True)):
            try:
                sent[reminder.kind] += _remind(pk, reminder, moment)
            except Exception:
                failed += 1
                log.exception("Could not send the %s reminder of API key %s.", reminder.kind, pk)
    counts = {
        "sent_7_days": sent[NoticeKind.EXPIRES_IN_7_DAYS],
        "sent_1_day": sent[NoticeKind.EXPIRES_IN_1_DAY],
        "failed": failed,
    }
    log.info(
        "Expiry reminders as of %s: %d sent for 7 days, %d for 1 day, %d failed.",
        utc_text(moment),
        *counts.values(),
    )
    if failed:
        raise JobIncomplete(f"{failed} expiry reminders failed; the next run tries them again.")
    return counts


# --- the stale-key policy -----------------------------------------------------------------


def _stale_reason(api_key: ApiKey, policy: KeyPolicy, moment: datetime) -> str:
    days = policy.disable_unused_after_days
    if api_key.last_used_at is None:
        made = (moment - api_key.created_at).days
        return f"Never used in the {made} days since it was made (policy: {days} days)"
    return f"Not used for {(moment - api_key.last_used_at).days} days (policy: {days} days)"


def _disable_stale(pk: int, policy: KeyPolicy, moment: datetime) -> bool:
    """Disable the key if it is still stale, under its row lock; return True if disabled."""
    with transaction.atomic():
        # Checked again under the lock: a use written, a re-enabling or another run since the
        # key was listed leaves it alone.
        api_key = stale_keys(policy, moment).select_for_update().filter(pk=pk).first()
        if api_key is None:
            return False
        reason = _stale_reason(api_key, policy, moment)
        api_key = api_key_update(
            actor=STALE_KEY_POLICY, api_key=api_key, status=KeyStatus.DISABLED, reason=reason
        )
        recipients = key_recipients(api_key)
        if recipients:
            enqueue_mail(
                subject=f"API key “{api_key.name}” in {api_key.organization.name} was disabled",
                template="apikeys/email/key_disabled_stale.txt",
                context=_mail_context(api_key)
                | {"reason": reason, "days": policy.disable_unused_after_days},
                recipients=recipients,
            )
    return True


@cron(f"{STALE_KEYS_AT.minute} {STALE_KEYS_AT.hour} * * *")
@task()
def disable_stale_keys(now: str | None = None) -> dict[str, int]:
    """Disable the keys each organization's policy says have gone unused too long."""
    moment = as_of(now)
    disabled = failed = 0
    policies = KeyPolicy.objects.filter(disable_unused_after_days__gte=1).order_by("pk")
    for policy in policies:
        for pk in list(stale_keys(policy, moment).order_by("pk").values_list("pk", flat=True)):
            try:
                disabled += _disable_stale(pk, policy, moment)
            except Exception:
                failed += 1
                log.exception("Could not disable stale API key %s.", pk)
    log.info(
        "Stale-key policy as of %s: %d keys disabled, %d failed.",
        utc_text(moment),
        disabled,
        failed,
    )
    if failed:
        raise JobIncomplete(f"{failed} stale keys were not disabled; the next run tries again.")
    return {"disabled": disabled, "failed": failed}


# --- housekeeping ---------------------------------------------------------------------------


@cron("37 4 * * *")
@task()
def housekeeping(now: str | None = None) -> dict[str, int]:
    """Delete expired CLI login codes, old usage, old scanning deliveries and task results."""
    moment = as_of(now)
    usage_kept = timedelta(days=settings.KEYPORTAL_USAGE_RETENTION_DAYS)
    results_kept = timedelta(days=settings.KEYPORTAL_TASK_RESULTS_RETENTION_DAYS)
    deleted = {
        "device_authorizations": delete_rows(
            DeviceAuthorization.objects.filter(expires_at__lt=moment - DEVICE_AUTHORIZATIONS_KEPT)
        ),
        "usage_days": delete_rows(KeyUsage.objects.filter(day__lt=(moment - usage_kept).date())),
        "scanning_deliveries": delete_rows(
            SecretScanningDelivery.objects.filter(received_at__lt=moment - SCANNING_DELIVERIES_KEPT)
        ),
        "task_results": delete_rows(
            DBTaskResult.objects.finished().filter(finished_at__lt=moment - results_kept)
        ),
    }
    log.info(
        "Housekeeping as of %s: deleted %s.",
        utc_text(moment),
        ", ".join(f"{count} {what.replace('_', ' ')}" for what, count in deleted.items()),
    )
    return deleted
