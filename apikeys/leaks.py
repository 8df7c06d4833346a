"""Keys reported leaked: by GitHub secret scanning, or by anyone holding one.

Holding a key is the proof: whoever can show its secret could use it, so whoever can show it
may also stop it, without any authority over the key (as a key may always revoke itself, DESIGN
"Authority over keys"). A report never says whether the key was one of keyportal's: the doors
answer the same either way; only GitHub, whose reports are signed, is told
(apikeys/github_scanning.py).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables
from django_ratelimit.core import get_usage

from accounts.access import Actor
from accounts.models import AuditEventType, Membership
from accounts.services import audit_record
from apikeys.compromise import REPORT_LABELS
from apikeys.models import ApiKey, LeakSource
from apikeys.selectors import key_recipients
from keyportal.http import client_ip
from keyportal.mail import enqueue_mail
from keyportal_cli.tokens import TOKEN_PATTERN, has_token_format, token_digest, token_preview

_TOKEN_IN_TEXT = re.compile(TOKEN_PATTERN)
# How a report by nobody the key's organization knows is recorded.
ANONYMOUS_REPORTER = "Leak report"
# What the mail says of who reported the key.
REPORTERS = {
    LeakSource.GITHUB: "GitHub secret scanning",
    LeakSource.HOLDER: "someone holding the key, through keyportal's leak report",
}


class LeakOutcome(StrEnum):
    """What a report did. Only GitHub's signed reports are answered with it."""

    NOT_FOUND = "not_found"  # not a secret of any key (or not a keyportal token at all)
    COMPROMISED = "compromised"  # a live key's secret: the key is compromised and revoked
    REVOKED_RECORDED = "revoked_recorded"  # a revoked key's secret: recorded, nobody emailed
    ALREADY = "already"  # a key already compromised: nothing changes
    PREVIOUS_ENDED = "previous_ended"  # a rotated-out secret in its grace period: ended now
    PREVIOUS_STOPPED = "previous_stopped"  # a rotated-out secret past its grace: nothing

    @property
    def matched(self) -> bool:
        """Return True when the token is, or was, a secret of one of keyportal's keys."""
        return self != LeakOutcome.NOT_FOUND


@dataclass(frozen=True)
class LeakResult:
    outcome: LeakOutcome
    api_key: ApiKey | None = None


def reports_limited(request: HttpRequest) -> int | None:
    """Count one report from the request's address (the API's and the console's alike); return
    the seconds to wait when it is one too many (KEYPORTAL_LEAK_REPORTS_RATE), else None."""
    usage = get_usage(
        request,
        group="leak-reports",
        key=lambda _group, req: client_ip(req) or "unknown",
        rate=settings.KEYPORTAL_LEAK_REPORTS_RATE,
        increment=True,
    )
    if usage and usage["should_limit"]:
        return max(int(usage["time_left"]), 1)
    return None


def redact_tokens(value: Any) -> Any:
    """Return `value` (a report: text, or dicts and lists of it) with every keyportal token in
    its text replaced by the token's preview: a report quoting the key must not keep it."""
    if isinstance(value, str):
        return _TOKEN_IN_TEXT.sub(lambda match: token_preview(match.group()), value)
    if isinstance(value, dict):
        return {key: redact_tokens(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact_tokens(item) for item in value]
    return value


@sensitive_variables("token")
def key_report_leaked(
    *, token: str, source: LeakSource, report: dict[str, Any], actor: Actor
) -> LeakResult:
    """Stop the key whose secret `token` is, as reported leaked by `source`, with `report`
    (where it was found) kept for the record.

    No authority is asked for: holding the secret is the proof (DESIGN, "Authority over keys",
    as a key may always revoke itself). A live key's current secret makes the key compromised
    and revoked, for good, in one update (an old secret still in its grace period dies with it),
    and the people responsible for the key are emailed. A revoked key is marked compromised for
    the record, nobody emailed: nothing is at risk. A key already compromised is left as it is,
    so a report sent again changes nothing. An old secret still in its grace period after a
    rotation stops at once (the key and its new secret go on); one already past it is left alone.
    """
    # A typo, another product's token or a random string fails the checksum: no query at all.
    if not isinstance(token, str) or not has_token_format(token):
        return LeakResult(LeakOutcome.NOT_FOUND)
    digest = token_digest(token)
    report = redact_tokens(report)
    with transaction.atomic():
        api_key = (
            ApiKey.objects.select_for_update()
            .filter(Q(digest=digest) | Q(previous_digest=digest))
            .first()
        )
        if api_key is None:
            return LeakResult(LeakOutcome.NOT_FOUND)
        if api_key.digest == digest:
            outcome = _current_secret_leaked(api_key, source, report, actor)
        else:
            outcome = _previous_secret_leaked(api_key, source, report, actor)
    return LeakResult(outcome, api_key)


def _current_secret_leaked(
    api_key: ApiKey, source: LeakSource, report: dict, actor: Actor
) -> LeakOutcome:
    if api_key.is_compromised:
        return LeakOutcome.ALREADY
    now = timezone.now()
    was_revoked = api_key.is_revoked
    changes = {
        "compromised_at": now,
        "compromised_source": source,
        "compromise_report": report,
        "previous_digest": None,
        "previous_valid_until": None,
    }
    if not was_revoked:  # a key revoked before keeps who revoked it, and when
        changes |= {"revoked_at": now, "revoked_by": None}
    ApiKey.objects.filter(pk=api_key.pk).update(**changes)
    for field, value in changes.items():
        setattr(api_key, field, value)
    _record(actor, api_key, source, report, which="current", revoked=not was_revoked)
    if was_revoked:
        return LeakOutcome.REVOKED_RECORDED
    _mail(api_key, source, report, previous=False)
    return LeakOutcome.COMPROMISED


def _previous_secret_leaked(
    api_key: ApiKey, source: LeakSource, report: dict, actor: Actor
) -> LeakOutcome:
    if api_key.previous_valid_until is None or api_key.previous_valid_until <= timezone.now():
        # The old secret already stopped working: nothing is at risk. Nothing is recorded
        # either, else anyone holding a dead secret could write to the audit log at will.
        return LeakOutcome.PREVIOUS_STOPPED
    ApiKey.objects.filter(pk=api_key.pk).update(previous_digest=None, previous_valid_until=None)
    api_key.previous_digest = api_key.previous_valid_until = None
    _record(actor, api_key, source, report, which="previous", revoked=False)
    _mail(api_key, source, report, previous=True)
    return LeakOutcome.PREVIOUS_ENDED


def _record(
    actor: Actor,
    api_key: ApiKey,
    source: LeakSource,
    report: dict,
    *,
    which: str,
    revoked: bool,
) -> None:
    if (
        actor.user is not None
        and not Membership.objects.filter(
            user=actor.user, organization_id=api_key.organization_id
        ).exists()
    ):
        # A person of another organization reports anonymously: their name is not the key's
        # organization's to read (DESIGN: never another tenant's data).
        actor = dataclasses.replace(actor, user=None, label=ANONYMOUS_REPORTER, membership=None)
    audit_record(
        actor=actor,
        organization=api_key.organization,
        action=AuditEventType.API_KEY_COMPROMISED,
        target=api_key,
        detail={
            "name": api_key.name,
            "preview": api_key.preview,
            "kind": api_key.kind,
            "source": str(source),
            "secret": which,
            "revoked": revoked,
            "report": report,
        },
    )


def leak_place(report: dict) -> list[tuple[str, str]]:
    """Return where the report says the key was found, as (label, text) lines to show."""
    return [(label, str(report[key])) for key, label in REPORT_LABELS.items() if report.get(key)]


def _mail(api_key: ApiKey, source: LeakSource, report: dict, *, previous: bool) -> None:
    organization = api_key.organization
    link = settings.KEYPORTAL_BASE_URL + reverse(
        "api_key_detail", kwargs={"org": organization.slug, "pk": api_key.pk}
    )
    subject = (
        f"The old secret of the API key {api_key.name} was reported leaked"
        if previous
        else f"The API key {api_key.name} was reported leaked and no longer works"
    )
    enqueue_mail(
        subject=subject,
        template="apikeys/email/key_compromised.txt",
        context={
            "name": api_key.name,
            "preview": api_key.preview,
            "kind": api_key.get_kind_display(),
            "organization": organization.name,
            "reporter": REPORTERS.get(source, str(source)),
            "source": str(source),
            "place": leak_place(report),
            "previous": previous,
            "link": link,
        },
        recipients=key_recipients(api_key),
    )
