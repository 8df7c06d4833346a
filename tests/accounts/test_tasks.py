"""Sign-in housekeeping: expired sessions and django-axes' old records go, the rest stays."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.utils import timezone

from accounts.tasks import sign_in_housekeeping

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)
DAY = timedelta(days=1)


def session(expire_date) -> str:
    store = SessionStore()
    store["organization"] = "acme"
    store.create()
    Session.objects.filter(session_key=store.session_key).update(expire_date=expire_date)
    return store.session_key


def record(model, age: timedelta):
    """Return an axes record made `age` ago (its time is set on creation, so moved after)."""
    fields = {"user_agent": "test", "ip_address": "203.0.113.9", "username": f"{age.days}@x.test"}
    if model is AccessAttempt:
        fields |= {"get_data": "", "post_data": "", "failures_since_start": 1}
    row = model.objects.create(http_accept="*/*", path_info="/login/", **fields)
    model.objects.filter(pk=row.pk).update(attempt_time=NOW - age)
    return row


def test_sign_in_housekeeping_deletes_old_records_and_keeps_recent_ones(settings):
    """Expired sessions and records older than the retention go; live sessions and recent
    records stay; a second run finds nothing more."""
    settings.KEYPORTAL_LOGIN_RECORDS_RETENTION_DAYS = 30
    expired = session(timezone.now() - timedelta(minutes=1))
    live = session(timezone.now() + DAY)
    old = [record(model, 31 * DAY) for model in (AccessAttempt, AccessFailureLog, AccessLog)]
    recent = [record(model, 29 * DAY) for model in (AccessAttempt, AccessFailureLog, AccessLog)]

    assert sign_in_housekeeping.call(now=NOW.isoformat()) == {
        "sessions": 1,
        "attempts": 1,
        "failures": 1,
        "logins": 1,
    }
    assert list(Session.objects.values_list("session_key", flat=True)) == [live]
    assert expired != live
    for row in old:
        assert not type(row).objects.filter(pk=row.pk).exists()
    for row in recent:
        assert type(row).objects.filter(pk=row.pk).exists()
    assert set(sign_in_housekeeping.call(now=NOW.isoformat()).values()) == {0}


def test_sessions_expire_by_the_clock_whatever_now_says():
    """Run as of a later moment, the job still keeps sessions that are valid now."""
    live = session(timezone.now() + DAY)
    sign_in_housekeeping.call(now=(NOW + 10 * DAY).isoformat())
    assert Session.objects.filter(session_key=live).exists()


def test_retention_follows_its_setting(settings):
    """KEYPORTAL_LOGIN_RECORDS_RETENTION_DAYS decides how long records are kept."""
    settings.KEYPORTAL_LOGIN_RECORDS_RETENTION_DAYS = 7
    record(AccessLog, 8 * DAY)
    kept = record(AccessLog, 6 * DAY)
    assert sign_in_housekeeping.call(now=NOW.isoformat())["logins"] == 1
    assert list(AccessLog.objects.values_list("pk", flat=True)) == [kept.pk]
