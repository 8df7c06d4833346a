"""Readiness: whether this process can serve requests (GET /api/v1/ready).

`/api/v1/health` is liveness: it touches nothing, so a load balancer or an orchestrator can tell
a hung process from a busy database. Readiness asks what every request with a key needs: the
database (one trivial query) and the caches (a probe key set and read back in the `default`
cache and in KEYPORTAL_LIMITS_CACHE, where rate limits, budgets and failed attempts are
counted). The answer names each part and whether it answered; never an address, a connection
string or an error's text (those go to the log, for the operator).
"""

from __future__ import annotations

import logging
import secrets
from typing import Literal

from django.conf import settings
from django.core.cache import caches
from django.db import connections, router
from ninja import Schema

from apikeys.models import ApiKey

log = logging.getLogger(__name__)

OK = "ok"
FAILING = "failing"
# A probe lives this long at most, if it is not read back (it always is, at once).
PROBE_SECONDS = 10

CheckResult = Literal["ok", "failing"]


class ReadyChecks(Schema):
    database: CheckResult
    cache: CheckResult
    limits_cache: CheckResult


class Ready(Schema):
    status: Literal["ready", "not_ready"]
    checks: ReadyChecks


def check_database() -> str:
    """Run `SELECT 1` on the database keys are verified against."""
    alias = router.db_for_read(ApiKey)
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:  # any failure is "not ready", never a 500
        log.warning("Readiness: the database %r did not answer: %r", alias, error)
        return FAILING
    return OK


def check_cache(alias: str) -> str:
    """Set a probe key in the cache `alias`, read it back and delete it."""
    key = f"kp:ready:{secrets.token_hex(8)}"
    value = secrets.token_hex(8)
    try:
        cache = caches[alias]
        cache.set(key, value, PROBE_SECONDS)
        found = cache.get(key)
        cache.delete(key)
    except Exception as error:
        log.warning("Readiness: the cache %r did not answer: %r", alias, error)
        return FAILING
    if found != value:
        log.warning("Readiness: the cache %r did not keep a value it was given.", alias)
        return FAILING
    return OK


def readiness() -> tuple[bool, dict[str, str]]:
    """Return whether every part answers, and each part's answer."""
    limits_alias = settings.KEYPORTAL_LIMITS_CACHE
    checks = {"database": check_database(), "cache": check_cache("default")}
    checks["limits_cache"] = (
        checks["cache"] if limits_alias == "default" else check_cache(limits_alias)
    )
    return all(result == OK for result in checks.values()), checks
