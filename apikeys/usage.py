"""Key usage: last used and daily counts, buffered in each worker and written in batches.

An API request only adds to this process's buffer (no database write, no lock held across a
query). A background thread writes the buffer every KEYPORTAL_USAGE_FLUSH_SECONDS (10), and a
worker that exits cleanly writes what it holds. So a count lags by at most that interval (plus
the write itself), and a worker killed without warning (SIGKILL, out of memory, power loss)
loses at most its last interval of counts. Counts only add up (count = count + n), so any
number of workers and hosts can flush into the same rows.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections import Counter
from datetime import date, datetime

from django.conf import settings
from django.db import close_old_connections, transaction
from django.db.models import F, Q
from django.utils import timezone

from apikeys.models import ApiKey, KeyUsage

log = logging.getLogger(__name__)

_lock = threading.Lock()
_counts: Counter[tuple[int, date]] = Counter()
_last_used: dict[int, datetime] = {}
_flusher: threading.Thread | None = None


def record_use(api_key_id: int) -> None:
    """Count one request by the key, in memory; cheap enough for every API request."""
    now = timezone.now()
    with _lock:
        _counts[(api_key_id, now.date())] += 1
        _last_used[api_key_id] = now
    _ensure_flusher()


def flush() -> int:
    """Write the buffered counts and last-used times; return how many rows were touched."""
    with _lock:
        counts, last_used = _counts.copy(), dict(_last_used)
        _counts.clear()
        _last_used.clear()
    if not counts:
        return 0
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
    return len(counts)


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


def discard() -> None:
    """Drop whatever is buffered (tests start each case with an empty buffer)."""
    with _lock:
        _counts.clear()
        _last_used.clear()


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
