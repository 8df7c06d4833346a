"""The scheduled jobs about keys: expiry reminders, the stale-key policy and housekeeping.

Each job runs "as of" a moment given as `now`, so no test sleeps; each is run twice, and
interleaved with a second run as two workers would be, to show it acts once.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection, connections
from django.tasks import TaskResultStatus
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from accounts.access import Actor
from accounts.models import AuditEvent, Membership, Origin
from apikeys import tasks
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
from apikeys.services import api_key_update
from apikeys.tasks import disable_stale_keys, housekeeping, send_expiry_reminders
from keyportal.jobs import JobIncomplete, as_of
from tests.apikeys.conftest import detail_url, operator_key
from tests.factories import ProjectFactory, ServiceAccountFactory, TeamFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)


@pytest.fixture
def run(django_capture_on_commit_callbacks):
    """Return a function running a job as of a moment, its mail sent (after commit)."""

    def call(job, moment=NOW, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return job.call(now=moment.isoformat(), **kwargs)

    return call


def make_key(org, kind=KeyKind.ORGANIZATION, **fields) -> ApiKey:
    """Create a key as an operator would, then set its columns as the test needs."""
    owner = {
        KeyKind.USER: org.member,
        KeyKind.SERVICE_ACCOUNT: ServiceAccountFactory(organization=org.organization),
        KeyKind.PROJECT: ProjectFactory(team=TeamFactory(organization=org.organization)),
    }.get(kind)
    preset = "project" if kind == KeyKind.PROJECT else "read-only"
    api_key, _ = operator_key(org, kind=kind, owner=owner, preset=preset)
    if fields:
        ApiKey.objects.filter(pk=api_key.pk).update(**fields)
        api_key.refresh_from_db()
    return api_key


def mails_about(api_key: ApiKey) -> list:
    return [m for m in mail.outbox if f"“{api_key.name}”" in m.subject]


# --- expiry reminders -----------------------------------------------------------------------

WINDOWS = [
    # (time left before expiry, the notice sent, the notices claimed)
    pytest.param(7 * DAY + MINUTE, None, set(), id="just over 7 days: none yet"),
    pytest.param(7 * DAY, NoticeKind.EXPIRES_IN_7_DAYS, {"expiry-7d"}, id="7 days: 7-day"),
    pytest.param(3 * DAY, NoticeKind.EXPIRES_IN_7_DAYS, {"expiry-7d"}, id="3 days: 7-day"),
    pytest.param(DAY + MINUTE, NoticeKind.EXPIRES_IN_7_DAYS, {"expiry-7d"}, id="1 day + 1 min"),
    pytest.param(
        DAY, NoticeKind.EXPIRES_IN_1_DAY, {"expiry-1d", "expiry-7d"}, id="1 day: 1-day only"
    ),
    pytest.param(
        20 * HOUR, NoticeKind.EXPIRES_IN_1_DAY, {"expiry-1d", "expiry-7d"}, id="20 h: both due"
    ),
    pytest.param(
        MINUTE, NoticeKind.EXPIRES_IN_1_DAY, {"expiry-1d", "expiry-7d"}, id="1 minute left"
    ),
    pytest.param(timedelta(0), None, set(), id="expiring now: none"),
    pytest.param(-HOUR, None, set(), id="expired: none"),
]


@pytest.mark.parametrize(("left", "sent", "claimed"), WINDOWS)
def test_reminder_windows(org, run, left, sent, claimed):
    """7 days ahead the 7-day reminder, 1 day ahead only the 1-day one (both claimed)."""
    api_key = make_key(org, expires_at=NOW + left)
    counts = run(send_expiry_reminders)
    mails = mails_about(api_key)
    if sent is None:
        assert mails == []
    else:
        # One mail per recipient (owner and admin), all of the one reminder due.
        assert len(mails) == 2
        assert counts["sent_1_day" if sent == NoticeKind.EXPIRES_IN_1_DAY else "sent_7_days"] == 1
    assert set(api_key.notices.values_list("kind", flat=True)) == claimed


def test_key_without_expiry_gets_no_reminder(org, run):
    """A key that never expires is never reminded of."""
    api_key = make_key(org, expires_at=None)
    run(send_expiry_reminders)
    assert mails_about(api_key) == []


@pytest.mark.parametrize(
    "state",
    [
        pytest.param({"revoked_at": NOW - HOUR}, id="revoked"),
        pytest.param({"status": KeyStatus.DISABLED}, id="disabled"),
        pytest.param({"compromised_at": NOW - HOUR, "revoked_at": NOW - HOUR}, id="compromised"),
    ],
)
def test_no_reminder_for_a_key_that_no_longer_works(org, run, state):
    """Revoked, disabled and compromised keys get no reminder, nor a claimed notice."""
    api_key = make_key(org, expires_at=NOW + 3 * DAY, **state)
    run(send_expiry_reminders)
    assert mails_about(api_key) == []
    assert not api_key.notices.exists()


@pytest.mark.parametrize("gone", ["deactivated", "removed"])
def test_no_reminder_for_a_personal_key_whose_owner_is_gone(org, run, gone):
    """A personal key of a deactivated person, or of one no longer a member, has no power:
    no reminder about it."""
    api_key = make_key(org, KeyKind.USER, expires_at=NOW + 3 * DAY)
    if gone == "deactivated":
        type(org.member).objects.filter(pk=org.member.pk).update(is_active=False)
    else:
        Membership.objects.filter(user=org.member, organization=org.organization).delete()
    run(send_expiry_reminders)
    assert mails_about(api_key) == []


# Who hears about a key (DESIGN: the owner of a personal key; owners and admins otherwise).
RECIPIENTS_PER_KIND = [
    (KeyKind.USER, {"member"}),
    (KeyKind.ORGANIZATION, {"owner", "admin"}),
    (KeyKind.SERVICE_ACCOUNT, {"owner", "admin"}),
    (KeyKind.PROJECT, {"owner", "admin"}),
]


@pytest.mark.parametrize(("kind", "recipients"), RECIPIENTS_PER_KIND)
def test_reminder_recipients_per_kind(org, other_org, run, kind, recipients):
    """A personal key's owner is told; for other keys, the organization's owners and admins
    (not its members, nor another organization's people, nor a deactivated admin)."""
    inactive_admin = Membership.objects.create(
        organization=org.organization,
        role="admin",
        user=type(org.owner).objects.create_user("gone@example.test", is_active=False),
    )
    api_key = make_key(org, kind, expires_at=NOW + 3 * DAY)
    run(send_expiry_reminders)
    expected = {getattr(org, role).email for role in recipients}
    assert {m.to[0] for m in mails_about(api_key)} == expected
    assert inactive_admin.user.email not in expected
    assert all(len(m.to) == 1 for m in mail.outbox)


def test_reminder_names_the_key_its_organization_expiry_and_page(org, run, settings):
    """The mail names the key (name and preview), its organization, the exact expiry in UTC,
    links to its page, and says how to extend or rotate it."""
    settings.KEYPORTAL_BASE_URL = "https://keys.example.com"
    expires_at = (NOW + 3 * DAY).replace(second=0)
    api_key = make_key(org, KeyKind.USER, expires_at=expires_at, name="laptop")
    run(send_expiry_reminders)
    (message,) = mails_about(api_key)
    assert message.subject == "API key “laptop” in Acme expires in 3 days"
    body = message.body
    assert f"“laptop” ({api_key.preview}) in Acme" in body
    assert f"{expires_at:%Y-%m-%d %H:%M} UTC" in body
    assert f"https://keys.example.com{detail_url(api_key)}" in body
    assert "extend its expiry" in body
    assert "rotate the key" in body
    assert "&quot;" not in body and "&#x27;" not in body


def test_reminder_is_never_sent_twice(org, run):
    """Run again, in the same hour or the next, the job sends nothing more."""
    api_key = make_key(org, expires_at=NOW + 3 * DAY)
    first = run(send_expiry_reminders)
    second = run(send_expiry_reminders)
    third = run(send_expiry_reminders, NOW + HOUR)
    assert first["sent_7_days"] == 1
    assert second["sent_7_days"] == third["sent_7_days"] == 0
    assert len(mails_about(api_key)) == 2  # owner and admin, once each


def test_the_1_day_reminder_follows_the_7_day_one(org, run):
    """A key reminded 7 days ahead is reminded again 1 day ahead, once."""
    api_key = make_key(org, KeyKind.USER, expires_at=NOW + 7 * DAY)
    run(send_expiry_reminders)
    for hours in range(1, 7 * 24 + 2):
        run(send_expiry_reminders, NOW + hours * HOUR)
    subjects = [m.subject for m in mails_about(api_key)]
    assert subjects == [
        f"API key “{api_key.name}” in Acme expires in 7 days",
        f"API key “{api_key.name}” in Acme expires in 24 hours",
    ]


def test_extended_expiry_gets_its_reminders_again(org, run):
    """A key whose expiry is extended is reminded again before the new date."""
    api_key = make_key(org, KeyKind.USER, expires_at=NOW + 3 * DAY)
    run(send_expiry_reminders)
    api_key_update(actor=Actor(user=org.member), api_key=api_key, expires_at=NOW + 20 * DAY)
    run(send_expiry_reminders)  # 20 days left: nothing yet
    run(send_expiry_reminders, NOW + 14 * DAY)  # 6 days left
    assert len(mails_about(api_key)) == 2
    assert api_key.notices.filter(kind=NoticeKind.EXPIRES_IN_7_DAYS).count() == 2


def test_two_runs_listing_the_same_keys_send_once(org, run, monkeypatch):
    """Two workers that both list a key: the one that claims second sends nothing."""
    keys = [make_key(org, KeyKind.USER, expires_at=NOW + 3 * DAY) for _ in range(3)]
    real_remind, other = tasks._remind, {}

    def other_worker_first(*args):
        if not other:  # once, after this run has listed its keys
            other["started"] = True
            other["counts"] = send_expiry_reminders.call(now=NOW.isoformat())
        return real_remind(*args)

    monkeypatch.setattr(tasks, "_remind", other_worker_first)
    counts = run(send_expiry_reminders)
    assert other["counts"]["sent_7_days"] == 3
    assert counts["sent_7_days"] == 0
    assert all(len(mails_about(api_key)) == 1 for api_key in keys)


def another_run_first(monkeypatch, step: str, job) -> dict:
    """Make this run's first call of `step` wait while another run of `job` goes all the way
    (two workers past the listing at once); return that other run's counts once it has run."""
    real, other = getattr(tasks, step), {}

    def interleaved(*args):
        if not other:
            other["started"] = True  # the other run's own calls go straight through
            other["counts"] = job.call(now=NOW.isoformat())
        return real(*args)

    monkeypatch.setattr(tasks, step, interleaved)
    return other


def test_the_claim_decides_between_two_runs(org, run, monkeypatch):
    """Two workers past the listing, claiming at once: the unique notice lets one through."""
    api_key = make_key(org, KeyKind.USER, expires_at=NOW + 3 * DAY)
    other = another_run_first(monkeypatch, "_claim", send_expiry_reminders)
    counts = run(send_expiry_reminders)
    assert other["counts"]["sent_7_days"] == 1
    assert counts["sent_7_days"] == 0
    assert len(mails_about(api_key)) == 1
    assert api_key.notices.count() == 1


def test_a_failed_reminder_leaves_the_others_and_is_sent_next_run(org, run, monkeypatch):
    """When one key's mail cannot be enqueued, the keys before and after it are reminded, its
    claim is rolled back, the run fails, and the next run sends it."""
    keys = [
        make_key(org, KeyKind.USER, expires_at=NOW + (2 + i) * DAY, name=f"key {i}")
        for i in range(3)
    ]
    real_enqueue, calls = tasks.enqueue_mail, []

    def second_fails(**kwargs):
        calls.append(kwargs["subject"])
        if len(calls) == 2:
            raise ConnectionError("queue unavailable")
        return real_enqueue(**kwargs)

    monkeypatch.setattr(tasks, "enqueue_mail", second_fails)
    with pytest.raises(JobIncomplete):
        run(send_expiry_reminders)
    assert [len(mails_about(k)) for k in keys] == [1, 0, 1]
    assert [k.notices.count() for k in keys] == [1, 0, 1]
    monkeypatch.setattr(tasks, "enqueue_mail", real_enqueue)
    assert run(send_expiry_reminders)["sent_7_days"] == 1
    assert [len(mails_about(k)) for k in keys] == [1, 1, 1]


def at_the_same_moment(job, workers: int = 4) -> list[dict]:
    """Run `job` as of NOW on `workers` threads released together, each with its own database
    connection (PostgreSQL: real concurrent transactions); return their counts."""
    if connection.vendor != "postgresql":
        pytest.skip("concurrent transactions need PostgreSQL (SQLite takes turns)")
    start, results, errors = threading.Barrier(workers), [], []

    def worker():
        try:
            start.wait(timeout=10)
            results.append(job.call(now=NOW.isoformat()))
        except Exception as error:  # pragma: no cover - shown by the assertion below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(results) == workers
    return results


@pytest.mark.django_db(transaction=True)
def test_reminders_from_workers_at_the_same_moment_go_once(org):
    """Four workers running the job at the same moment, on PostgreSQL: each mail goes once."""
    keys = [make_key(org, KeyKind.USER, expires_at=NOW + 3 * DAY) for _ in range(10)]
    results = at_the_same_moment(send_expiry_reminders)
    assert sum(r["sent_7_days"] for r in results) == 10
    assert all(len(mails_about(api_key)) == 1 for api_key in keys)
    assert KeyNotice.objects.count() == 10


# --- the stale-key policy ---------------------------------------------------------------------


@pytest.fixture
def policy(org) -> KeyPolicy:
    """Disable Acme's organization keys unused for 90 days."""
    return KeyPolicy.objects.create(
        organization=org.organization, kind=KeyKind.ORGANIZATION, disable_unused_after_days=90
    )


STALE_CASES = [
    # (columns of an organization key, disabled by the 90-day policy?)
    pytest.param({"last_used_at": NOW - 89 * DAY, "created_at": NOW - 300 * DAY}, False, id="used 89 d ago"),
    pytest.param({"last_used_at": NOW - 90 * DAY + MINUTE, "created_at": NOW - 300 * DAY}, False, id="used 90 d - 1 min ago"),
    pytest.param({"last_used_at": NOW - 90 * DAY - MINUTE, "created_at": NOW - 300 * DAY}, True, id="used 90 d + 1 min ago"),
    pytest.param({"last_used_at": NOW - 200 * DAY, "created_at": NOW - 300 * DAY}, True, id="used 200 d ago"),
    pytest.param({"last_used_at": None, "created_at": NOW - 91 * DAY}, True, id="never used, old"),
    pytest.param({"last_used_at": None, "created_at": NOW - 89 * DAY}, False, id="never used, new"),
    pytest.param({"last_used_at": NOW - HOUR, "created_at": NOW - 300 * DAY}, False, id="used recently"),
    pytest.param({"created_at": NOW - 300 * DAY, "revoked_at": NOW - DAY}, False, id="revoked"),
    pytest.param({"created_at": NOW - 300 * DAY, "expires_at": NOW - DAY}, False, id="expired"),
    pytest.param({"created_at": NOW - 300 * DAY, "expires_at": NOW + DAY}, True, id="expiring later"),
    pytest.param({"created_at": NOW - 300 * DAY, "rotated_at": NOW - 10 * DAY}, False, id="rotated recently"),
    pytest.param({"created_at": NOW - 300 * DAY, "rotated_at": NOW - 100 * DAY}, True, id="rotated long ago"),
]  # fmt: skip


@pytest.mark.parametrize(("fields", "disabled"), STALE_CASES)
def test_stale_key_edges(org, policy, run, fields, disabled):
    """Keys unused for the policy's days are disabled; live keys used since, or made, rotated
    or re-enabled since, and keys that no longer work, are left alone."""
    api_key = make_key(org, **fields)
    before = AuditEvent.objects.count()
    counts = run(disable_stale_keys)
    api_key.refresh_from_db()
    assert (api_key.status == KeyStatus.DISABLED) is disabled
    assert counts == {"disabled": int(disabled), "failed": 0}
    assert AuditEvent.objects.count() == before + int(disabled)


def test_already_disabled_key_is_left_as_it_is(org, policy, run):
    """A key disabled already is not disabled again: no history row, no mail."""
    api_key = make_key(org, created_at=NOW - 300 * DAY, status=KeyStatus.DISABLED)
    assert run(disable_stale_keys)["disabled"] == 0
    assert not AuditEvent.objects.filter(target_id=str(api_key.pk), action="api_key.updated")
    assert mails_about(api_key) == []


@pytest.mark.parametrize(
    "where",
    [
        pytest.param("policy null", id="policy without a number of days"),
        pytest.param("other organization", id="another organization's policy"),
        pytest.param("other kind", id="a policy for another kind"),
    ],
)
def test_policy_applies_only_to_its_organization_and_kind(org, other_org, run, where):
    """A policy disables only its own organization's keys of its own kind."""
    old = {"created_at": NOW - 300 * DAY}
    if where == "policy null":
        api_key = make_key(org, **old)
        KeyPolicy.objects.create(
            organization=org.organization, kind=KeyKind.ORGANIZATION, max_lifetime_days=365
        )
    elif where == "other organization":
        KeyPolicy.objects.create(
            organization=other_org.organization,
            kind=KeyKind.ORGANIZATION,
            disable_unused_after_days=30,
        )
        api_key = make_key(org, **old)
    else:
        KeyPolicy.objects.create(
            organization=org.organization,
            kind=KeyKind.SERVICE_ACCOUNT,
            disable_unused_after_days=30,
        )
        api_key = make_key(org, KeyKind.ORGANIZATION, **old)
    run(disable_stale_keys)
    api_key.refresh_from_db()
    assert api_key.status == KeyStatus.ACTIVE


def test_disabling_goes_through_the_service_with_its_reason(org, policy, run):
    """The disable is the service's, by the worker: its history names the reason."""
    api_key = make_key(org, last_used_at=NOW - 94 * DAY, created_at=NOW - 300 * DAY)
    run(disable_stale_keys)
    event = AuditEvent.objects.get(target_id=str(api_key.pk), action="api_key.updated")
    assert event.action == "api_key.updated"
    assert event.origin == Origin.WORKER
    assert event.actor_label == "keyportal worker (stale-key policy)"
    assert event.actor_user is None
    assert event.detail["changed"] == ["status"]
    assert event.detail["status"] == KeyStatus.DISABLED
    assert event.detail["reason"] == "Not used for 94 days (policy: 90 days)"
    assert event.history_label == "Disabled — Not used for 94 days (policy: 90 days)"


def test_never_used_key_reason(org, policy, run):
    """A key never used is disabled "never used" since it was made."""
    api_key = make_key(org, last_used_at=None, created_at=NOW - 120 * DAY)
    run(disable_stale_keys)
    event = AuditEvent.objects.get(target_id=str(api_key.pk), action="api_key.updated")
    assert (
        event.detail["reason"] == "Never used in the 120 days since it was made (policy: 90 days)"
    )


@pytest.mark.parametrize(("kind", "recipients"), RECIPIENTS_PER_KIND)
def test_disabled_key_mail(org, run, settings, kind, recipients):
    """Its owner, or the organization's owners and admins, are told which key was disabled,
    why, and how to enable it again."""
    settings.KEYPORTAL_BASE_URL = "https://keys.example.com"
    KeyPolicy.objects.create(organization=org.organization, kind=kind, disable_unused_after_days=30)
    api_key = make_key(org, kind, created_at=NOW - 45 * DAY, expires_at=NOW + 5 * DAY)
    run(disable_stale_keys)
    mails = mails_about(api_key)
    assert {m.to[0] for m in mails} == {getattr(org, role).email for role in recipients}
    body = mails[0].body
    assert mails[0].subject == f"API key “{api_key.name}” in Acme was disabled"
    assert f"({api_key.preview}) in Acme has been disabled" in body
    assert "Never used in the 45 days since it was made (policy: 30 days)." in body
    assert f"https://keys.example.com{detail_url(api_key)}" in body
    assert "choose Enable" in body
    assert f"PATCH /api/v1/keys/{api_key.pk}" in body


def test_re_enabled_key_gets_the_policy_days_again(org, policy, run):
    """A key enabled again after the policy disabled it is not disabled the next night, but
    once it has again gone unused for the policy's days."""
    api_key = make_key(org, last_used_at=NOW - 200 * DAY, created_at=NOW - 300 * DAY)
    run(disable_stale_keys)
    api_key_update(actor=Actor(user=org.owner), api_key=api_key, status=KeyStatus.ACTIVE)
    assert run(disable_stale_keys, NOW + DAY)["disabled"] == 0
    assert run(disable_stale_keys, NOW + 89 * DAY)["disabled"] == 0
    assert run(disable_stale_keys, NOW + 91 * DAY)["disabled"] == 1


def test_stale_keys_twice_disables_once(org, policy, run):
    """Run twice, the job disables each key once, writes one history row and one mail each."""
    keys = [make_key(org, created_at=NOW - 100 * DAY) for _ in range(2)]
    assert run(disable_stale_keys)["disabled"] == 2
    assert run(disable_stale_keys)["disabled"] == 0
    for api_key in keys:
        assert AuditEvent.objects.filter(target_id=str(api_key.pk)).count() == 2  # made, disabled
        assert len(mails_about(api_key)) == 2  # owner and admin


def test_two_runs_listing_the_same_stale_keys_disable_once(org, policy, run, monkeypatch):
    """Two workers that both list a stale key: the second finds it disabled under the lock."""
    keys = [make_key(org, created_at=NOW - 100 * DAY) for _ in range(2)]
    other = another_run_first(monkeypatch, "_disable_stale", disable_stale_keys)
    assert run(disable_stale_keys)["disabled"] == 0
    assert other["counts"]["disabled"] == 2
    for api_key in keys:
        assert AuditEvent.objects.filter(target_id=str(api_key.pk)).count() == 2


def test_a_key_used_after_it_was_listed_is_not_disabled(org, policy, run, monkeypatch):
    """A use written between the listing and the disable (the usage flush) saves the key."""
    api_key = make_key(org, last_used_at=NOW - 100 * DAY, created_at=NOW - 300 * DAY)
    real = tasks._disable_stale

    def used_meanwhile(*args):
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=NOW - MINUTE)
        return real(*args)

    monkeypatch.setattr(tasks, "_disable_stale", used_meanwhile)
    assert run(disable_stale_keys)["disabled"] == 0
    api_key.refresh_from_db()
    assert api_key.status == KeyStatus.ACTIVE


def test_a_failure_in_the_middle_leaves_each_key_whole(org, policy, run, monkeypatch):
    """When the second key's mail cannot be enqueued, the first and third are disabled, the
    second is unchanged (no history row), the run fails, and the next run completes it."""
    keys = [make_key(org, created_at=NOW - 100 * DAY, name=f"key {i}") for i in range(3)]
    real_enqueue, calls = tasks.enqueue_mail, []

    def second_fails(**kwargs):
        calls.append(kwargs["subject"])
        if len(calls) == 2:
            raise ConnectionError("queue unavailable")
        return real_enqueue(**kwargs)

    monkeypatch.setattr(tasks, "enqueue_mail", second_fails)
    with pytest.raises(JobIncomplete, match="1 stale keys"):
        run(disable_stale_keys)
    statuses = [ApiKey.objects.get(pk=k.pk).status for k in keys]
    assert statuses == [KeyStatus.DISABLED, KeyStatus.ACTIVE, KeyStatus.DISABLED]
    assert AuditEvent.objects.filter(target_id=str(keys[1].pk)).count() == 1  # created only
    monkeypatch.setattr(tasks, "enqueue_mail", real_enqueue)
    assert run(disable_stale_keys) == {"disabled": 1, "failed": 0}
    assert ApiKey.objects.get(pk=keys[1].pk).status == KeyStatus.DISABLED


def test_a_policy_of_zero_days_disables_nothing(org, run):
    """A policy of 0 days (never offered) would disable every key at once: it is ignored."""
    KeyPolicy.objects.create(
        organization=org.organization, kind=KeyKind.ORGANIZATION, disable_unused_after_days=0
    )
    api_key = make_key(org, created_at=NOW - 300 * DAY)
    assert run(disable_stale_keys)["disabled"] == 0
    api_key.refresh_from_db()
    assert api_key.status == KeyStatus.ACTIVE


# --- housekeeping -------------------------------------------------------------------------------


def device_authorization(expires_at) -> DeviceAuthorization:
    return DeviceAuthorization.objects.create(
        device_code_digest=f"{expires_at.timestamp():064.0f}",
        user_code="ABCD-EFGH",
        client="keyportal-cli",
        host="laptop",
        expires_at=expires_at,
    )


def task_result(status, finished_at) -> DBTaskResult:
    return DBTaskResult.objects.create(
        status=status,
        finished_at=finished_at,
        args_kwargs={"args": [], "kwargs": {}},
        task_path="apikeys.tasks.housekeeping",
        backend_name="default",
    )


def test_housekeeping_deletes_old_rows_and_keeps_recent_ones(org, run, settings):
    """Each kind of row past its time goes; the rest stays."""
    settings.KEYPORTAL_USAGE_RETENTION_DAYS = 400
    settings.KEYPORTAL_TASK_RESULTS_RETENTION_DAYS = 14
    api_key = make_key(org)
    old = {
        device_authorization(NOW - 2 * DAY),
        KeyUsage.objects.create(api_key=api_key, day=(NOW - 401 * DAY).date(), count=3),
        SecretScanningDelivery.objects.create(
            signature_digest="a" * 64, key_identifier="k", tokens=1, received_at=NOW - 91 * DAY
        ),
        task_result(TaskResultStatus.SUCCESSFUL, NOW - 15 * DAY),
        task_result(TaskResultStatus.FAILED, NOW - 15 * DAY),
    }
    kept = {
        # A CLI polling just after its code expired still hears "expired_token".
        device_authorization(NOW - 12 * HOUR),
        device_authorization(NOW + 5 * MINUTE),
        KeyUsage.objects.create(api_key=api_key, day=(NOW - 400 * DAY).date(), count=2),
        KeyUsage.objects.create(api_key=api_key, day=NOW.date(), count=1),
        SecretScanningDelivery.objects.create(
            signature_digest="b" * 64, key_identifier="k", tokens=1, received_at=NOW - 89 * DAY
        ),
        task_result(TaskResultStatus.SUCCESSFUL, NOW - 13 * DAY),
        # Not finished, however old: waiting or running.
        task_result(TaskResultStatus.READY, None),
        task_result(TaskResultStatus.RUNNING, None),
    }
    assert run(housekeeping) == {
        "device_authorizations": 1,
        "usage_days": 1,
        "scanning_deliveries": 1,
        "task_results": 2,
    }
    for row in old:
        assert not type(row).objects.filter(pk=row.pk).exists(), row
    for row in kept:
        assert type(row).objects.filter(pk=row.pk).exists(), row
    # Twice is harmless: nothing more to delete.
    assert set(run(housekeeping).values()) == {0}


def test_usage_retention_follows_its_setting(org, run, settings):
    """KEYPORTAL_USAGE_RETENTION_DAYS decides how many days of usage are kept."""
    settings.KEYPORTAL_USAGE_RETENTION_DAYS = 30
    api_key = make_key(org)
    KeyUsage.objects.create(api_key=api_key, day=(NOW - 31 * DAY).date(), count=1)
    KeyUsage.objects.create(api_key=api_key, day=(NOW - 29 * DAY).date(), count=1)
    assert run(housekeeping)["usage_days"] == 1
    assert KeyUsage.objects.count() == 1


def test_as_of_reads_iso_8601_and_takes_utc_for_a_naive_time():
    """`now` is ISO 8601; without a zone it is UTC."""
    assert as_of("2026-03-01T09:00").isoformat() == "2026-03-01T09:00:00+00:00"
    assert as_of("2026-03-01T09:00+02:00").isoformat() == "2026-03-01T09:00:00+02:00"
    assert abs(as_of(None) - timezone.now()) < MINUTE


@pytest.mark.django_db(transaction=True)
def test_stale_keys_from_workers_at_the_same_moment_are_disabled_once(org, policy):
    """Four workers disabling at the same moment, on PostgreSQL: each stale key is disabled
    once, recorded once, and its owners and admins are emailed once."""
    keys = [make_key(org, created_at=NOW - 100 * DAY) for _ in range(10)]
    results = at_the_same_moment(disable_stale_keys)
    assert sum(r["disabled"] for r in results) == 10
    assert sum(r["failed"] for r in results) == 0
    for api_key in keys:
        api_key.refresh_from_db()
        assert api_key.status == KeyStatus.DISABLED
        edits = AuditEvent.objects.filter(target_id=str(api_key.pk), action="api_key.updated")
        assert edits.count() == 1
        assert len(mails_about(api_key)) == 2  # owner and admin
