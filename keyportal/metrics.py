"""Prometheus metrics at /metrics, off unless configured (docs/operators.md, "Metrics").

Off by default: with neither `KEYPORTAL_METRICS_TOKEN` nor `KEYPORTAL_METRICS_ALLOWED_IPS` set,
/metrics answers 404 and nothing is counted; the hot path pays one check of the module-level
`ENABLED` flag. On, a verification costs one `Counter.inc` and one `Histogram.observe`.

Where the numbers live:

- Counted in the process that saw them: verifications, usage flushes, jobs run by a worker.
  With several gunicorn workers, set `PROMETHEUS_MULTIPROC_DIR` (before the process starts:
  prometheus-client reads it on import) to a folder the processes of one host share; every
  scrape then adds up all of them (prometheus-client's multiprocess mode). Without it each
  process has its own registry and a scrape sees the worker that answered it.
- Computed at scrape time, from the database: keys by kind and state (one grouped query) and
  the last finished run of each scheduled job (one grouped query). These are the same whichever
  worker or host answers.

Nothing here holds a key's token, digest or name, nor an organization: labels are a fixed,
small set (result code, kind, state, job, outcome), so the number of series never grows with
the data.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import time
from collections.abc import Iterable, Iterator

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_safe
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder

from keyportal.http import client_ip

# prometheus-client chooses where values live (memory, or mmap files in this folder) when it is
# imported: the variable must be in the environment before the process starts.
MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

# Read by the hot path (apikeys/api/auth.py) before anything else here: False costs nothing more.
ENABLED = False
_token = ""
_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

# No `_created` series: they double the output and nothing here needs them.
disable_created_metrics()
# This module's metrics, kept apart from prometheus-client's global registry so that only
# keyportal's own series are exposed.
REGISTRY = CollectorRegistry(auto_describe=True)

# Every result a key presented to the API can have: the API's error codes, and "ok".
VERIFICATION_RESULTS = (
    "ok",
    "invalid_key",
    "key_revoked",
    "key_disabled",
    "key_expired",
    "key_compromised",
    "ip_not_allowed",
    "rate_limited",
    "usage_exhausted",
)
VERIFICATIONS = Counter(
    "keyportal_key_verifications",
    "API keys presented to the API (Authorization: Bearer), by result: ok or the error code.",
    ["result"],
    registry=REGISTRY,
)
VERIFICATION_SECONDS = Histogram(
    "keyportal_key_verification_duration_seconds",
    "Time to verify a key presented to the API: format, lookup, state, protections.",
    buckets=(
        0.0001,
        0.00025,
        0.0005,
        0.001,
        0.0025,
        0.005,
        0.01,
        0.025,
        0.05,
        0.1,
        0.25,
        0.5,
        1.0,
    ),
    registry=REGISTRY,
)
USAGE_FLUSH_SECONDS = Histogram(
    "keyportal_usage_flush_duration_seconds",
    "Time each successful write of the buffered key usage took.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
USAGE_FLUSH_ROWS = Counter(
    "keyportal_usage_flush_rows",
    "Rows the usage flushes wrote: daily counts, last use, budgets and refused addresses.",
    registry=REGISTRY,
)
USAGE_FLUSH_FAILURES = Counter(
    "keyportal_usage_flush_failures",
    "Usage flushes that failed (logged; the next one tries again).",
    registry=REGISTRY,
)
# Per process (the pid label in multiprocess mode); the scrape turns it into the oldest one and
# keyportal_usage_flush_lag_seconds. Only live processes: gunicorn's child_exit hook removes a
# dead worker's value (docs/operators.md), and a value of a pid no longer running is skipped.
FLUSH_LAST = "keyportal_usage_flush_last_success_timestamp_seconds"
USAGE_FLUSH_LAST = Gauge(
    FLUSH_LAST,
    "When the usage flush last succeeded, for the process that flushed longest ago.",
    multiprocess_mode="liveall",
    registry=REGISTRY,
)
JOB_RESULTS = Counter(
    "keyportal_job_runs",
    "Scheduled jobs run by a worker in this host's processes, by job and outcome.",
    ["job", "outcome"],
    registry=REGISTRY,
)
JOB_SECONDS = Histogram(
    "keyportal_job_duration_seconds",
    "Time each scheduled job run by a worker took, by job.",
    ["job"],
    buckets=(0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 3600.0),
    registry=REGISTRY,
)

# Bound once: a labelled child costs a lock and a dictionary lookup to find on every request.
_results = {result: VERIFICATIONS.labels(result) for result in VERIFICATION_RESULTS}


# --- recording (the hot path and the background work) -----------------------------------------


def observe_verification(result: str, started: float) -> None:
    """Count one key presented to the API, with its result and the time since `started`
    (time.perf_counter()). Call only when ENABLED."""
    VERIFICATION_SECONDS.observe(time.perf_counter() - started)
    child = _results.get(result)
    (child or VERIFICATIONS.labels(result)).inc()


def usage_flusher_started() -> None:
    """A process starts writing usage in the background: its lag counts from now."""
    USAGE_FLUSH_LAST.set(time.time())


def usage_flushed(rows: int, seconds: float) -> None:
    USAGE_FLUSH_ROWS.inc(rows)
    USAGE_FLUSH_SECONDS.observe(seconds)
    USAGE_FLUSH_LAST.set(time.time())


def usage_flush_failed() -> None:
    USAGE_FLUSH_FAILURES.inc()


def job_finished(job: str, outcome: str, seconds: float | None) -> None:
    JOB_RESULTS.labels(job, outcome).inc()
    if seconds is not None:
        JOB_SECONDS.labels(job).observe(seconds)


# --- configuration ------------------------------------------------------------------------------


def _setting(name: str) -> str:
    """Return a setting, or the environment variable of the same name when settings leave it
    out."""
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name, "")
    if isinstance(value, list | tuple):
        value = ",".join(value)
    return str(value).strip()


def configure() -> None:
    """Read KEYPORTAL_METRICS_TOKEN and KEYPORTAL_METRICS_ALLOWED_IPS; turn metrics on when
    either is set."""
    global ENABLED, _token, _networks
    token = _setting("KEYPORTAL_METRICS_TOKEN")
    entries = [e.strip() for e in _setting("KEYPORTAL_METRICS_ALLOWED_IPS").split(",") if e.strip()]
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"KEYPORTAL_METRICS_ALLOWED_IPS: {entry!r} is not an address or a CIDR range."
            ) from None
    _token, _networks = token, tuple(networks)
    ENABLED = bool(token or networks)


def _on_setting_changed(*, setting: str, **kwargs) -> None:
    if setting in ("KEYPORTAL_METRICS_TOKEN", "KEYPORTAL_METRICS_ALLOWED_IPS"):
        configure()


setting_changed.connect(_on_setting_changed)
configure()


# --- the scrape -------------------------------------------------------------------------------


KEY_STATES = ("active", "disabled", "expired", "revoked", "compromised")


def _key_families() -> Iterator[Metric]:
    """Keys by kind and state, in one grouped query (a count over the key table's rows)."""
    from django.db.models import Case, CharField, Count, F, Value, When
    from django.utils import timezone

    from apikeys.models import ApiKey, KeyKind

    now = timezone.now()
    state = Case(
        When(compromised_at__isnull=False, then=Value("compromised")),
        When(revoked_at__isnull=False, then=Value("revoked")),
        When(expires_at__lte=now, then=Value("expired")),
        default=F("status"),
        output_field=CharField(),
    )
    rows = (
        ApiKey.objects.order_by()
        .annotate(state=state)
        .values("kind", "state")
        .annotate(n=Count("pk"))
        .values_list("kind", "state", "n")
    )
    counts = {(kind, name): 0 for kind in KeyKind.values for name in KEY_STATES}
    for kind, name, n in rows:
        counts[(kind, name)] = n
    family = GaugeMetricFamily(
        "keyportal_api_keys",
        "API keys by kind (user, svc, org, project) and state, counted at scrape time.",
        labels=["kind", "state"],
    )
    for (kind, name), n in sorted(counts.items()):
        family.add_metric([kind, name], n)
    yield family


def _job_families() -> Iterator[Metric]:
    """When each scheduled job last finished, by outcome, from the worker's task results in
    the database (one grouped query): the same on every host, whoever ran it."""
    from django.db.models import Max
    from django.tasks import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    from keyportal.jobs import JOBS

    outcomes = {TaskResultStatus.SUCCESSFUL: "successful", TaskResultStatus.FAILED: "failed"}
    rows = (
        DBTaskResult.objects.order_by()
        .filter(task_path__in=JOBS, status__in=list(outcomes), finished_at__isnull=False)
        .values("task_path", "status")
        .annotate(last=Max("finished_at"))
        .values_list("task_path", "status", "last")
    )
    family = GaugeMetricFamily(
        "keyportal_job_last_finished_timestamp_seconds",
        "When each scheduled job last finished, by outcome, as the task results in the "
        "database say (kept KEYPORTAL_TASK_RESULTS_RETENTION_DAYS).",
        labels=["job", "outcome"],
    )
    for path, status, last in sorted(rows):
        family.add_metric([path.rsplit(".", 1)[-1], outcomes[status]], last.timestamp())
    yield family


def _alive(pid: str | None) -> bool:
    if not pid:
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, OverflowError):
        return True
    return True


def _flush_families(family: Metric) -> Iterator[Metric]:
    """Turn each process's last successful flush into the oldest one and the lag behind now."""
    seen = [
        sample.value
        for sample in family.samples
        if sample.value > 0 and _alive(sample.labels.get("pid"))
    ]
    if seen:
        oldest = GaugeMetricFamily(family.name, family.documentation)
        oldest.add_metric([], min(seen))
        yield oldest
    yield GaugeMetricFamily(
        "keyportal_usage_flush_lag_seconds",
        "Seconds since the usage flush last succeeded, for the process that flushed longest "
        "ago (0 when no process holds usage to write).",
        value=max(time.time() - min(seen), 0.0) if seen else 0.0,
    )


def counted_families() -> Iterator[Metric]:
    """The counted metrics: this process's, or every process's of the host in multiprocess
    mode (added up; the flush timestamp turned into the oldest one and the lag)."""
    if MULTIPROCESS:
        counted = multiprocess.MultiProcessCollector(None).collect()
    else:
        counted = REGISTRY.collect()
    for family in counted:
        if family.name == FLUSH_LAST:
            yield from _flush_families(family)
        else:
            yield family


class _Scrape:
    """What one scrape exposes: the counted metrics, then what the database says."""

    def collect(self) -> Iterable[Metric]:
        yield from counted_families()
        yield from _key_families()
        yield from _job_families()


def exposition(accept: str | None = None) -> tuple[bytes, str]:
    """Return the body of a scrape and its content type (Prometheus' text format, or
    OpenMetrics when the scraper asks for it)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Scrape())
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type


def _allowed_address(request: HttpRequest) -> bool:
    address = client_ip(request)
    if not address:
        return False
    ip = ipaddress.ip_address(address)
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in _networks)


def _token_matches(request: HttpRequest) -> bool:
    scheme, _, given = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), _token.encode()
    )


@login_not_required
@require_safe
def metrics_view(request: HttpRequest) -> HttpResponse:
    """GET /metrics: 404 when metrics are off; 403 from an address not on the list; 401
    without the token; else the metrics."""
    if not ENABLED:
        raise Http404("Metrics are off.")
    if _networks and not _allowed_address(request):
        return _plain("This address may not read the metrics.\n", 403)
    if _token and not _token_matches(request):
        response = _plain("Send the metrics token as `Authorization: Bearer <token>`.\n", 401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    body, content_type = exposition(request.META.get("HTTP_ACCEPT"))
    response = HttpResponse(body, content_type=content_type)
    response["Cache-Control"] = "no-store"
    return response


def _plain(text: str, status: int) -> HttpResponse:
    response = HttpResponse(text, status=status, content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = "no-store"
    return response
