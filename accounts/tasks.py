"""Scheduled housekeeping of sign-in records: expired sessions and django-axes' records.

Scheduled by crontask (`manage.py crontask`), run by the worker; safe to run twice and on
several workers at once, since it only deletes what is past its time (apikeys/tasks.py has the
jobs about keys).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from importlib import import_module

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from crontask import cron
from django.conf import settings
from django.tasks import task
from django.utils import timezone

from keyportal.jobs import as_of, delete_rows, utc_text

log = logging.getLogger(__name__)


def _clear_expired_sessions() -> int | None:
    """Delete the expired sessions through the session engine, as `manage.py clearsessions`
    does; return how many when the engine keeps them in the database.

    Sessions expire by the clock, whatever moment the job runs as of: a session still valid
    now is never deleted.
    """
    store = import_module(settings.SESSION_ENGINE).SessionStore
    model = store.get_model_class() if hasattr(store, "get_model_class") else None
    expired = model.objects.filter(expire_date__lt=timezone.now()).count() if model else None
    store.clear_expired()
    return expired


@cron("47 4 * * *")
@task()
def sign_in_housekeeping(now: str | None = None) -> dict[str, int | None]:
    """Delete expired sessions and old sign-in records (django-axes).

    Records of attempts, failures and logins go after KEYPORTAL_LOGIN_RECORDS_RETENTION_DAYS.
    The records are deleted by their time directly: axes' own `reset_logs(age_days=)` and
    `reset_failure_logs(age_days=)` count from the clock (not `now`), exist only on its database
    handler and have no counterpart for attempts. An attempt counts towards a lockout for
    AXES_COOLOFF_TIME (15 minutes) only, so a month-old one is history.
    """
    moment = as_of(now)
    cutoff = moment - timedelta(days=settings.KEYPORTAL_LOGIN_RECORDS_RETENTION_DAYS)
    deleted = {
        "sessions": _clear_expired_sessions(),
        "attempts": delete_rows(AccessAttempt.objects.filter(attempt_time__lt=cutoff)),
        "failures": delete_rows(AccessFailureLog.objects.filter(attempt_time__lt=cutoff)),
        "logins": delete_rows(AccessLog.objects.filter(attempt_time__lt=cutoff)),
    }
    log.info(
        "Sign-in housekeeping as of %s: deleted %s expired sessions, %d attempts, "
        "%d failure records, %d login records.",
        utc_text(moment),
        "some" if deleted["sessions"] is None else deleted["sessions"],
        deleted["attempts"],
        deleted["failures"],
        deleted["logins"],
    )
    return deleted
