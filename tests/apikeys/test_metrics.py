"""/metrics: off by default, protected when on, and what it counts (keyportal/metrics.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.tasks import TaskResultStatus
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from prometheus_client.parser import text_string_to_metric_families

from accounts.access import Actor
from apikeys import tasks, usage
from apikeys.models import ApiKey, KeyKind, KeyStatus
from apikeys.services import api_key_revoke, api_key_update
from keyportal import metrics
from keyportal_cli.tokens import generate_token
from tests.apikeys.conftest import operator_key
from tests.factories import OrganizationFactory

pytestmark = pytest.mark.django_db
TOKEN = "metrics-token-for-the-tests-0123456789"
OPERATOR = Actor.operator("operator (tests)")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def metrics_on(settings):
    """Turn metrics on with a bearer token (the settings fixture turns them off after)."""
    settings.KEYPORTAL_METRICS_TOKEN = TOKEN
    assert metrics.ENABLED
    yield
    # pytest-django restores the settings after this fixture, firing setting_changed.


@pytest.fixture(autouse=True)
def _metrics_off_after():
    yield
    assert not metrics.ENABLED, "a test left metrics on"


def scrape(token: str | None = TOKEN, **extra):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return Client().get("/metrics", **headers, **extra)


def families(response) -> dict:
    assert response.status_code == 200, response.content
    return {f.name: f for f in text_string_to_metric_families(response.content.decode())}


def sample(name: str, **labels) -> float:
    """Return a counted value of this process (0 when it has none yet)."""
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def whoami(token: str, **extra):
    return Client().get("/api/v1/whoami", HTTP_AUTHORIZATION=f"Bearer {token}", **extra)


# --- off, on, and who may read ------------------------------------------------------------------


def test_off_by_default_answers_404_and_counts_nothing(org):
    """Without a token or an address list, /metrics does not exist and the hot path counts
    nothing."""
    assert not metrics.ENABLED
    assert scrape().status_code == 404
    assert scrape(None).status_code == 404
    _key, token = operator_key(org)
    before = sample("keyportal_key_verifications_total", result="ok")
    seconds = sample("keyportal_key_verification_duration_seconds_count")
    assert whoami(token).status_code == 200
    assert sample("keyportal_key_verifications_total", result="ok") == before
    assert sample("keyportal_key_verification_duration_seconds_count") == seconds


def test_token_is_required(metrics_on):
    """With a token set: none or a wrong one is 401, the right one reads the metrics."""
    for response in (scrape(None), scrape("wrong"), scrape(TOKEN + "x"), scrape(TOKEN[:-1])):
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
        assert b"keyportal_" not in response.content
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}")
    assert response.status_code == 401
    response = scrape()
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    assert response["Cache-Control"] == "no-store"
    assert "keyportal_key_verifications" in families(response)


def test_post_is_refused(metrics_on):
    response = Client().post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 405


def test_openmetrics_when_asked(metrics_on):
    response = scrape(HTTP_ACCEPT="application/openmetrics-text; version=1.0.0")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/openmetrics-text")
    assert response.content.rstrip().endswith(b"# EOF")


def test_allowed_addresses(settings):
    """With an address list alone, only those addresses read the metrics, without a token."""
    settings.KEYPORTAL_METRICS_ALLOWED_IPS = "10.0.0.0/8, 192.0.2.7"
    assert metrics.ENABLED
    assert scrape(None, REMOTE_ADDR="127.0.0.1").status_code == 403
    assert scrape(None, REMOTE_ADDR="203.0.113.9").status_code == 403
    assert scrape(None, REMOTE_ADDR="").status_code == 403
    assert scrape(None, REMOTE_ADDR="10.20.30.40").status_code == 200
    assert scrape(None, REMOTE_ADDR="192.0.2.7").status_code == 200
    # An IPv4 address as a dual-stack socket reports it.
    assert scrape(None, REMOTE_ADDR="::ffff:192.0.2.7").status_code == 200


def test_allowed_addresses_behind_proxies(settings):
    """Behind KEYPORTAL_TRUSTED_PROXY_COUNT proxies, the client's address is the one the proxy
    saw: a forged X-Forwarded-For does not pass."""
    settings.KEYPORTAL_METRICS_ALLOWED_IPS = "10.0.0.0/8"
    settings.TRUSTED_PROXY_COUNT = 1
    forged = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "10.0.0.5, 203.0.113.9"}
    assert scrape(None, **forged).status_code == 403
    inside = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "10.9.9.9"}
    assert scrape(None, **inside).status_code == 200


def test_token_and_addresses_both_hold(settings):
    settings.KEYPORTAL_METRICS_TOKEN = TOKEN
    settings.KEYPORTAL_METRICS_ALLOWED_IPS = ["10.0.0.0/8"]
    assert scrape(TOKEN, REMOTE_ADDR="127.0.0.1").status_code == 403
    assert scrape(None, REMOTE_ADDR="10.0.0.1").status_code == 401
    assert scrape(TOKEN, REMOTE_ADDR="10.0.0.1").status_code == 200


def test_a_bad_address_entry_is_a_configuration_error(settings):
    with pytest.raises(ImproperlyConfigured, match="not-an-address"):
        settings.KEYPORTAL_METRICS_ALLOWED_IPS = "10.0.0.0/8,not-an-address"
    settings.KEYPORTAL_METRICS_ALLOWED_IPS = ""
    assert not metrics.ENABLED


def test_the_environment_turns_metrics_on_when_settings_do_not_say(settings, monkeypatch):
    """keyportal/settings.py need not name the settings: the environment is read instead."""
    del settings.KEYPORTAL_METRICS_TOKEN  # absent from settings, whatever settings.py says
    monkeypatch.setenv("KEYPORTAL_METRICS_TOKEN", TOKEN)
    metrics.configure()
    try:
        assert metrics.ENABLED
        assert scrape().status_code == 200
    finally:
        monkeypatch.delenv("KEYPORTAL_METRICS_TOKEN")
        metrics.configure()
    assert not metrics.ENABLED


# --- verifications ------------------------------------------------------------------------------


def test_verifications_are_counted_by_result(org, metrics_on, settings):
    """Each key presented to the API adds one to its result and one latency observation."""
    settings.KEYPORTAL_API_AUTH_FAILURES_PER_MINUTE = 1_000_000
    revoked_key, revoked = operator_key(org, name="revoked")
    api_key_revoke(actor=OPERATOR, api_key=revoked_key)
    disabled_key, disabled = operator_key(org, name="disabled")
    api_key_update(actor=OPERATOR, api_key=disabled_key, status=KeyStatus.DISABLED)
    _key, allowlisted = operator_key(org, name="allowlisted", allowed_ips=["10.0.0.1"])
    _key, limited = operator_key(org, name="limited", rate_limits=[{"limit": 1, "window": "day"}])
    _key, budgeted = operator_key(org, name="budgeted", budget={"amount": 1})
    _key, fine = operator_key(org, name="fine")
    calls = [
        (fine, 200, "ok"),
        (fine, 200, "ok"),
        ("not-a-key", 401, "invalid_key"),
        (generate_token("org"), 401, "invalid_key"),
        (revoked, 401, "key_revoked"),
        (disabled, 401, "key_disabled"),
        (allowlisted, 403, "ip_not_allowed"),
        (limited, 200, "ok"),
        (limited, 429, "rate_limited"),
        (budgeted, 200, "ok"),
        (budgeted, 403, "usage_exhausted"),
    ]
    before = {r: sample("keyportal_key_verifications_total", result=r) for _, _, r in calls}
    observed = sample("keyportal_key_verification_duration_seconds_count")
    for token, status, _result in calls:
        assert whoami(token, REMOTE_ADDR="127.0.0.1").status_code == status
    expected = {r: sum(1 for _, _, c in calls if c == r) for _, _, r in calls}
    for result, n in expected.items():
        assert sample("keyportal_key_verifications_total", result=result) == before[result] + n
    assert sample("keyportal_key_verification_duration_seconds_count") == observed + len(calls)


def test_every_result_is_exposed_at_zero(metrics_on):
    """Each result has its series from the start, so a rate over it is never "no data"."""
    found = families(scrape())["keyportal_key_verifications"]
    results = {s.labels["result"] for s in found.samples if s.name.endswith("_total")}
    assert results >= set(metrics.VERIFICATION_RESULTS)


def test_metrics_add_no_query_to_the_hot_path(org, settings):
    """On, a request makes the same queries as off: the counters are in memory."""
    _key, token = operator_key(org)
    whoami(token)  # anything done once per process happens here

    def queries() -> list[str]:
        with CaptureQueriesContext(connection) as captured:
            assert whoami(token).status_code == 200
        return [q["sql"] for q in captured]

    off = queries()
    settings.KEYPORTAL_METRICS_TOKEN = TOKEN
    assert queries() == off


# --- keys by kind and state ------------------------------------------------------------------


def test_keys_by_kind_and_state_in_one_query(org, other_org, metrics_on, bot):
    """Keys are counted at scrape time in one grouped query, by kind and state only: the same
    20 series whatever the number of organizations."""
    operator_key(org, name="active one")
    operator_key(org, name="active two")
    operator_key(other_org, name="elsewhere")
    disabled, _ = operator_key(org, name="off")
    api_key_update(actor=OPERATOR, api_key=disabled, status=KeyStatus.DISABLED)
    gone, _ = operator_key(org, name="gone")
    api_key_revoke(actor=OPERATOR, api_key=gone)
    old, _ = operator_key(org, name="old")
    ApiKey.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(days=1))
    leaked, _ = operator_key(org, name="leaked")
    ApiKey.objects.filter(pk=leaked.pk).update(
        compromised_at=timezone.now(), revoked_at=timezone.now()
    )
    operator_key(org, kind=KeyKind.SERVICE_ACCOUNT, owner=bot, name="deploy")
    OrganizationFactory.create_batch(3)

    with CaptureQueriesContext(connection) as queries:
        body, _content_type = metrics.exposition()
    key_queries = [q["sql"] for q in queries if "apikeys_apikey" in q["sql"]]
    assert len(key_queries) == 1
    assert "GROUP BY" in key_queries[0]
    assert len(queries) == 2  # the keys, and the jobs' last runs

    found = {f.name: f for f in text_string_to_metric_families(body.decode())}
    counts = {
        (s.labels["kind"], s.labels["state"]): s.value for s in found["keyportal_api_keys"].samples
    }
    assert len(counts) == 4 * 5
    assert set(counts.keys()) == {
        (kind, state) for kind in ("user", "svc", "org", "project") for state in metrics.KEY_STATES
    }
    assert counts[("org", "active")] == 3
    assert counts[("org", "disabled")] == 1
    assert counts[("org", "revoked")] == 1
    assert counts[("org", "expired")] == 1
    assert counts[("org", "compromised")] == 1
    assert counts[("svc", "active")] == 1
    assert counts[("user", "active")] == 0
    # No organization, key name or preview in the output.
    text = body.decode()
    for word in ("Acme", "acme", "Globex", "active one", "sk-org-"):
        assert word not in text


# --- usage flushes ------------------------------------------------------------------------------


def test_usage_flush_is_timed_and_counted(org, metrics_on):
    api_key, token = operator_key(org)
    rows = sample("keyportal_usage_flush_rows_total")
    flushes = sample("keyportal_usage_flush_duration_seconds_count")
    assert whoami(token).status_code == 200
    usage.record_use(api_key.pk)
    written = usage.flush()
    assert written >= 1
    assert sample("keyportal_usage_flush_rows_total") == rows + written
    assert sample("keyportal_usage_flush_duration_seconds_count") == flushes + 1
    found = families(scrape())
    lag = found["keyportal_usage_flush_lag_seconds"].samples[0].value
    assert 0 <= lag < 5
    last = found["keyportal_usage_flush_last_success_timestamp_seconds"].samples[0].value
    assert abs(last - timezone.now().timestamp()) < 5


def test_a_failed_flush_is_counted_and_the_lag_grows(org, metrics_on, monkeypatch):
    usage.flush()
    metrics.USAGE_FLUSH_LAST.set(timezone.now().timestamp() - 120)
    failures = sample("keyportal_usage_flush_failures_total")

    def broken():
        raise RuntimeError("database gone")

    monkeypatch.setattr(usage, "_flush", broken)
    with pytest.raises(RuntimeError):
        usage.flush()
    assert sample("keyportal_usage_flush_failures_total") == failures + 1
    lag = families(scrape())["keyportal_usage_flush_lag_seconds"].samples[0].value
    assert 119 < lag < 130


def test_flush_with_metrics_off_is_not_measured(org):
    api_key, _token = operator_key(org)
    flushes = sample("keyportal_usage_flush_duration_seconds_count")
    usage.record_use(api_key.pk)
    assert usage.flush() >= 1
    assert sample("keyportal_usage_flush_duration_seconds_count") == flushes


# --- jobs ---------------------------------------------------------------------------------------


def test_job_results_by_job_and_outcome(org, metrics_on, monkeypatch):
    """A scheduled job run by a worker (here the immediate backend, which sends the same
    signals) is counted by job and outcome; other tasks are not."""
    ok = sample("keyportal_job_runs_total", job="housekeeping", outcome="successful")
    failed = sample("keyportal_job_runs_total", job="housekeeping", outcome="failed")
    timed = sample("keyportal_job_duration_seconds_count", job="housekeeping")
    tasks.housekeeping.enqueue()

    def broken(*args, **kwargs):
        raise RuntimeError("the database is gone")

    monkeypatch.setattr(tasks, "delete_rows", broken)
    result = tasks.housekeeping.enqueue()
    assert result.status == TaskResultStatus.FAILED
    assert sample("keyportal_job_runs_total", job="housekeeping", outcome="successful") == ok + 1
    assert sample("keyportal_job_runs_total", job="housekeeping", outcome="failed") == failed + 1
    assert sample("keyportal_job_duration_seconds_count", job="housekeeping") == timed + 2
    jobs = {s.labels["job"] for s in metrics.JOB_RESULTS.collect()[0].samples}
    assert jobs <= {
        "send_expiry_reminders",
        "disable_stale_keys",
        "housekeeping",
        "sign_in_housekeeping",
    }


def test_last_finished_job_runs_come_from_the_database(metrics_on):
    """The worker's task results say when each job last finished, by outcome, on every host."""
    now = timezone.now()

    def result(path: str, status: str, finished):
        return DBTaskResult.objects.create(
            task_path=path,
            status=status,
            finished_at=finished,
            args_kwargs={"args": [], "kwargs": {}},
            backend_name="default",
            run_after=finished,
            exception_class_path="",
            traceback="",
        )

    result("apikeys.tasks.housekeeping", TaskResultStatus.SUCCESSFUL, now - timedelta(hours=30))
    result("apikeys.tasks.housekeeping", TaskResultStatus.SUCCESSFUL, now - timedelta(hours=6))
    result("apikeys.tasks.housekeeping", TaskResultStatus.FAILED, now - timedelta(hours=2))
    result("apikeys.tasks.disable_stale_keys", TaskResultStatus.SUCCESSFUL, now)
    result("keyportal.mail.send_mail", TaskResultStatus.SUCCESSFUL, now)  # not a job
    found = families(scrape())["keyportal_job_last_finished_timestamp_seconds"]
    last = {(s.labels["job"], s.labels["outcome"]): s.value for s in found.samples}
    assert set(last) == {
        ("housekeeping", "successful"),
        ("housekeeping", "failed"),
        ("disable_stale_keys", "successful"),
    }
    assert last[("housekeeping", "successful")] == pytest.approx(
        (now - timedelta(hours=6)).timestamp(), abs=1
    )
    assert last[("housekeeping", "failed")] == pytest.approx(
        (now - timedelta(hours=2)).timestamp(), abs=1
    )


# --- several processes ------------------------------------------------------------------------


PROCESS = textwrap.dedent(
    """
    import json, os, sys, time
    import django
    django.setup()
    from keyportal import metrics
    assert metrics.MULTIPROCESS and metrics.ENABLED
    role = sys.argv[1]
    if role == "worker":
        # A worker that counted two valid keys, flushed long ago, and exited.
        metrics.observe_verification("ok", time.perf_counter())
        metrics.observe_verification("ok", time.perf_counter())
        metrics.usage_flushed(3, 0.01)
        metrics.USAGE_FLUSH_LAST.set(time.time() - 1000)
    else:
        # The worker answering the scrape: one revoked key, flushed 30 s ago.
        metrics.observe_verification("key_revoked", time.perf_counter())
        metrics.USAGE_FLUSH_LAST.set(time.time() - 30)
        seen = {}
        for family in metrics.counted_families():
            for s in family.samples:
                seen[s.name + json.dumps(s.labels, sort_keys=True)] = s.value
        print(json.dumps(seen))
    """
)


def test_multiprocess_mode_adds_up_the_workers(tmp_path):
    """With PROMETHEUS_MULTIPROC_DIR, a scrape adds up every process of the host; the flush
    lag ignores processes that are gone."""
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "KEYPORTAL_METRICS_TOKEN": TOKEN,
        "PYTHONPATH": str(ROOT),
    }

    def run(role: str) -> str:
        done = subprocess.run(  # noqa: S603 (this interpreter, this test's own code)
            [sys.executable, "-c", PROCESS, role],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    run("worker")
    seen = json.loads(run("scraper"))
    assert seen['keyportal_key_verifications_total{"result": "ok"}'] == 2
    assert seen['keyportal_key_verifications_total{"result": "key_revoked"}'] == 1
    assert seen["keyportal_key_verification_duration_seconds_count{}"] == 3
    assert seen["keyportal_usage_flush_rows_total{}"] == 3
    # The worker that exited flushed 1,000 s ago: not counted; the live one 30 s ago.
    assert 29 <= seen["keyportal_usage_flush_lag_seconds{}"] < 60
