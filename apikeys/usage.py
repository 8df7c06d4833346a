"""Key usage: last used and daily counts, buffered in each worker and written in batches.

An API request only adds to this process's buffer (no database write, no lock held across a
query). A background thread writes the buffer every KEYPORTAL_USAGE_FLUSH_SECONDS (10), and a
worker that exits cleanly writes what it holds. So a count lags by at most that interval (plus
the write itself), and a worker killed without warning (SIGKILL, out of memory, power loss)
loses at most its last interval of counts. Counts only add up (count = count + n), so any
number of workers and hosts can flush into the same rows.

The same batches write what a key's usage budget has left (the counter itself is in the shared
cache, apikeys/limits.py) and the last address its allowlist refused. A budget's count is only
ever lowered, within its version and refill period, so workers flushing in any order leave the
lowest count any of them saw.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections import Counter
from datetime import date, datetime
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import close_old_connections, transaction
from django.db.models import F, Q
from django.utils import timezone

from apikeys.models import ApiKey, KeyUsage
from keyportal import metrics

if TYPE_CHECKING:
    from apikeys.limits import Outcome

log = logging.getLogger(__name__)

_lock = threading.Lock()
_counts: Counter[tuple[int, date]] = Counter()
_last_used: dict[int, datetime] = {}
# key id -> (budget version, refill period, lowest remaining count seen)
_budgets: dict[int, tuple[str, str, int]] = {}
# key id -> (address, when): the last request its allowlist refused
_refused: dict[int, tuple[str, datetime]] = {}
_flusher: threading.Thread | None = None


def record_use(api_key_id: int) -> None:
    """Count one request by the key, in memory; cheap enough for every API request."""
    now = timezone.now()
    with _lock:
        _counts[(api_key_id, now.date())] += 1
        _last_used[api_key_id] = now
    _ensure_flusher()


def record_budget(api_key_id: int, version: str, period: str, remaining: int) -> None:
    """Remember what the key's budget had left after a request (from the cache's answer)."""
    with _lock:
        seen = _budgets.get(api_key_id)
        if (
            seen is None
            or seen[0] != version
            or period > seen[1]
            or (period == seen[1] and remaining < seen[2])
        ):
            _budgets[api_key_id] = (version, period, remaining)
    _ensure_flusher()


def record_limits(api_key_id: int, outcome: Outcome) -> None:
    """Remember what the key's budget had left, from an apikeys.limits.Outcome."""
    found = outcome.budget
    if found is not None and outcome.budget_remaining is not None:
        record_budget(api_key_id, found.version, outcome.budget_period, outcome.budget_remaining)


def record_refused_ip(api_key_id: int, address: str) -> None:
    """Remember the address a request came from that the key's allowlist refused."""
    with _lock:
        _refused[api_key_id] = (address, timezone.now())
    _ensure_flusher()


def flush() -> int:
    """Write the buffered counts, last-used times, budgets and refused addresses; return how
    many rows were touched. With /metrics on, each flush is timed and counted
    (keyportal/metrics.py: duration, rows, failures, and the lag since the last success)."""
    if not metrics.ENABLED:
        return _flush()
    started = time.perf_counter()
    try:
        rows = _flush()
    except Exception:
        metrics.usage_flush_failed()
        raise
    metrics.usage_flushed(rows, time.perf_counter() - started)
    return rows


def _flush() -> int:
    with _lock:
        counts, last_used = _counts.copy(), dict(_last_used)
        budgets, refused = dict(_budgets), dict(_refused)
        _counts.clear()
        _last_used.clear()
        _budgets.clear()
        _refused.clear()
    with transaction.atomic():
        _write_budgets(budgets)
        _write_refused(refused)
    if not counts:
        return len(budgets) + len(refused)
    with transaction.atomic():
        for (key_id, day), n in sorted(counts.items()):
            updated = KeyUsage.objects.filter(api_key_id=key_id, day=day).update(
                count=F("count") + n
            )
            if not updated and ApiKey.objects.filter(pk=key_id).exists():
                _, created = KeyUsage.objects.get_or_create(
                    api_key_id=key_id, day=day, defaults={"count": n}
                )
                if not created:  # another worker created the row in between
                    KeyUsage.objects.filter(api_key_id=key_id, day=day).update(count=F("count") + n)
        for key_id, when in last_used.items():
            # Never move last_used_at backwards when another worker flushed a later use.
            ApiKey.objects.filter(
                Q(last_used_at__lt=when) | Q(last_used_at__isnull=True), pk=key_id
            ).update(last_used_at=when)
    return len(counts) + len(budgets) + len(refused)


def _write_budgets(budgets: dict[int, tuple[str, str, int]]) -> None:
    for key_id, (version, period, remaining) in sorted(budgets.items()):
        # Only lower the count of the same budget (its version) in the same period, or start a
        # later period: a worker flushing late never raises what another wrote.
        ApiKey.objects.filter(pk=key_id, protections__budget__version=version).filter(
            Q(budget_remaining__isnull=True)
            | Q(budget_period__lt=period)
            | Q(budget_period=period, budget_remaining__gt=max(remaining, 0))
        ).update(budget_remaining=max(remaining, 0), budget_period=period)


def _write_refused(refused: dict[int, tuple[str, datetime]]) -> None:
    for key_id, (address, when) in sorted(refused.items()):
        ApiKey.objects.filter(
            Q(last_refused_at__lt=when) | Q(last_refused_at__isnull=True), pk=key_id
        ).update(last_refused_ip=address, last_refused_at=when)


def _run() -> None:
    stop = threading.Event()
    while not stop.wait(settings.KEYPORTAL_USAGE_FLUSH_SECONDS):
        try:
            flush()
        except Exception:  # a failed flush must not kill the thread; the next one retries
            log.exception("Could not write key usage")
        finally:
            close_old_connections()


def _ensure_flusher() -> None:
    global _flusher
    if not settings.KEYPORTAL_USAGE_FLUSH_SECONDS:
        return  # tests flush by hand
    if _flusher is None or not _flusher.is_alive():
        with _lock:
            if _flusher is None or not _flusher.is_alive():
                _flusher = threading.Thread(target=_run, name="key-usage-flush", daemon=True)
                _flusher.start()
                if metrics.ENABLED:
                    metrics.usage_flusher_started()


def discard() -> None:
    """Drop whatever is buffered (tests start each case with an empty buffer)."""
    with _lock:
        _counts.clear()
        _last_used.clear()
        _budgets.clear()
        _refused.clear()


@atexit.register
def _flush_at_exit() -> None:
    if not settings.KEYPORTAL_USAGE_FLUSH_SECONDS:
        return  # flushing by hand (tests): the database may already be gone at exit
    try:
        flush()
    except Exception:
        log.exception("Could not write key usage at exit")


def daily_counts(api_key: ApiKey, days: int = 30) -> list[tuple[date, int]]:
    """Return (day, count) for the key's last `days` days, oldest first, zeros included."""
    today = timezone.now().date()
    first = today.fromordinal(today.toordinal() - days + 1)
    stored = dict(
        KeyUsage.objects.filter(api_key=api_key, day__gte=first).values_list("day", "count")
    )
    return [
        (day, stored.get(day, 0))
        for day in (first.fromordinal(first.toordinal() + i) for i in range(days))
    ]
