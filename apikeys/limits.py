"""Rate limits and usage budgets, counted in the shared cache (DESIGN.md, hot path step 4).

Only keys that have a limit or a budget come here, and they make one round trip: on Redis
(Django's RedisCache, REDIS_URL) a Lua script checks every window and the budget and, when the
request may pass, counts it in each, atomically, for every worker and host at once. Any other
cache (the local-memory cache of the embedded default) runs the same steps under a lock; that is
exact within one process, which is why the embedded default serves from one process
(keyportal/gunicorn.conf.py).

Windows. Each window starts at the key's first request in it and lasts its length (GitHub's
kind of window): `limit` requests pass, the next is refused with the seconds until the window
ends. A refused request counts in no window and spends no budget, so a client that keeps
retrying while limited is not kept out any longer.

Budget. The counter lives in the cache under the budget's version and refill period, seeded on
first use from the row: the remaining count apikeys.usage last wrote (for this period), or the
refill amount in a new period. apikeys.usage writes what the counter says back to the row with
the usage counts, in batches, and never raises it. So:
- a web worker that dies loses nothing: the count is in the cache;
- a cache that loses the counter (Redis restarted without persistence, an eviction) seeds it
  again from the row, which is at most one flush interval (KEYPORTAL_USAGE_FLUSH_SECONDS) of
  requests behind: the key may be allowed at most that many requests again, never more.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.cache import caches
from redis.exceptions import NoScriptError, RedisError

from apikeys.models import ApiKey
from apikeys.protections import Budget, Window, budget, rate_limits

if TYPE_CHECKING:
    from typing import TypeIs

    from django.core.cache.backends.base import BaseCache
    from django.core.cache.backends.redis import RedisCache
    from redis import Redis

log = logging.getLogger(__name__)

OK, LIMITED, EXHAUSTED = 0, 1, 2


class CacheUnavailable(Exception):
    """The cache did not answer: the request cannot be counted."""


@dataclass(frozen=True)
class WindowState:
    window: Window
    used: int
    # Seconds until the window ends (its full length when it has not started).
    reset: int

    @property
    def remaining(self) -> int:
        return max(self.window.limit - self.used, 0)


@dataclass(frozen=True)
class Outcome:
    """What the cache said: OK, LIMITED (by `windows[limited_by]`) or EXHAUSTED."""

    result: int
    windows: tuple[WindowState, ...] = ()
    budget: Budget | None = None
    budget_remaining: int | None = None
    budget_period: str = ""
    limited_by: int | None = None
    counted: bool = False

    @property
    def retry_after(self) -> int:
        if self.limited_by is None:
            return 0
        return max(self.windows[self.limited_by].reset, 1)

    def headers(self) -> dict[str, str]:
        """Return the RateLimit-Policy and RateLimit fields of the IETF httpapi draft
        (draft-ietf-httpapi-ratelimit-headers-10): one quota policy per window, named by it."""
        if not self.windows:
            return {}
        policy = ", ".join(
            f'"{state.window.window}";q={state.window.limit};w={state.window.seconds}'
            for state in self.windows
        )
        current = ", ".join(
            f'"{state.window.window}";r={state.remaining};t={state.reset}' for state in self.windows
        )
        return {"RateLimit-Policy": policy, "RateLimit": current}


def has_limits(protections: dict) -> bool:
    return "rate_limits" in protections or "budget" in protections


def _cache() -> BaseCache:
    return caches[settings.KEYPORTAL_LIMITS_CACHE]


def _window_key(api_key_id: int, window: Window) -> str:
    return f"kp:rl:{api_key_id}:{window.window}"


def _budget_key(api_key_id: int, found: Budget, period: str) -> str:
    return f"kp:bg:{api_key_id}:{found.version}:{period}"


# How long a budget's counter stays in the cache after its last use: its refill period and a
# day beyond, or a month without a refill (the row holds it, a flush behind, if it goes).
_BUDGET_TTL = {"daily": 2 * 86400, "monthly": 33 * 86400, "": 31 * 86400}


def _seed(api_key: ApiKey, found: Budget, period: str) -> int:
    """Return what the budget's counter starts from when the cache does not hold it."""
    if api_key.budget_remaining is not None and api_key.budget_period == period:
        return api_key.budget_remaining
    if found.refill:
        return found.refill_amount or 0  # a new period: full again
    return found.amount


def check(api_key: ApiKey, *, consume: bool = True, now: float | None = None) -> Outcome:
    """Check the key's rate limits and budget and, with `consume`, count one request in them
    when it may pass. One round trip to the cache; call only when `has_limits`."""
    windows = rate_limits(api_key.protections)
    found = budget(api_key.protections)
    moment = time.time() if now is None else now
    period = found.period(_utc(moment)) if found is not None else ""
    keys = [_window_key(api_key.pk, w) for w in windows]
    budget_key = _budget_key(api_key.pk, found, period) if found is not None else None
    seed = _seed(api_key, found, period) if found is not None else 0
    cache = _cache()
    if _is_redis(cache):
        try:
            result, counts, resets, remaining = _check_redis(
                cache, keys, windows, budget_key, seed, found, consume
            )
        except RedisError as error:
            log.warning("Rate limits of key %s not checked: %s", api_key.pk, error)
            raise CacheUnavailable from error
    else:
        result, counts, resets, remaining = _check_local(
            cache, keys, windows, budget_key, seed, found, consume, moment
        )
    states = tuple(
        WindowState(window=w, used=used, reset=reset)
        for w, used, reset in zip(windows, counts, resets, strict=True)
    )
    limited_by = None
    if result == LIMITED:
        limited_by = next(i for i, state in enumerate(states) if state.used >= state.window.limit)
    return Outcome(
        result=result,
        windows=states,
        budget=found,
        budget_remaining=remaining if found is not None else None,
        budget_period=period,
        limited_by=limited_by,
        counted=consume and result == OK,
    )


def _utc(moment: float) -> datetime:
    return datetime.fromtimestamp(moment, UTC)


# --- Redis: one script, one round trip ---------------------------------------------------------

# KEYS: the windows' counters, then the budget's (when the key has one).
# ARGV: consume (1/0), the number of windows, then limit and seconds per window, then the
# budget's seed and time to live (when it has one).
# Returns {result, count and reset per window..., budget remaining or -1}: the counts and the
# remaining budget as they are after this request.
_SCRIPT = """
local consume = ARGV[1] == '1'
local n = tonumber(ARGV[2])
local result = 0
local counts = {}
local resets = {}
for i = 1, n do
  local limit = tonumber(ARGV[1 + 2 * i])
  local seconds = tonumber(ARGV[2 + 2 * i])
  local count = tonumber(redis.call('GET', KEYS[i]) or '0')
  local ttl = redis.call('PTTL', KEYS[i])
  if ttl < 0 then
    ttl = seconds * 1000
    count = 0
  end
  counts[i] = count
  resets[i] = math.ceil(ttl / 1000)
  if count >= limit then result = 1 end
end
local remaining = -1
if #KEYS > n then
  local bkey = KEYS[n + 1]
  local value = redis.call('GET', bkey)
  if not value then
    value = ARGV[3 + 2 * n]
    redis.call('SET', bkey, value, 'EX', tonumber(ARGV[4 + 2 * n]))
  end
  remaining = tonumber(value)
  if result == 0 and remaining <= 0 then result = 2 end
end
if result == 0 and consume then
  for i = 1, n do
    counts[i] = redis.call('INCR', KEYS[i])
    if counts[i] == 1 then
      redis.call('EXPIRE', KEYS[i], tonumber(ARGV[2 + 2 * i]))
    end
  end
  if remaining >= 0 then
    remaining = redis.call('DECR', KEYS[n + 1])
    redis.call('EXPIRE', KEYS[n + 1], tonumber(ARGV[4 + 2 * n]))
  end
end
local out = {result}
for i = 1, n do
  out[#out + 1] = counts[i]
  out[#out + 1] = resets[i]
end
out[#out + 1] = remaining
return out
"""

_SCRIPT_SHA = hashlib.sha1(_SCRIPT.encode()).hexdigest()  # noqa: S324 - Redis names scripts so


def _is_redis(cache: BaseCache) -> TypeIs[RedisCache]:
    from django.core.cache.backends.redis import RedisCache

    return isinstance(cache, RedisCache)


def _client(cache: RedisCache) -> Redis:
    """Return the redis-py client for the cache's write connection pool, made once.

    Django's RedisCache has no script API, and its get_client() builds a new client object on
    every call: kept on the cache's own client object (one per cache per thread), the client
    and its connection pool are reused by every request."""
    holder: Any = cache._cache  # (RedisCacheClient, holding an attribute of ours)
    client: Redis | None = getattr(holder, "_keyportal_limits_client", None)
    if client is None:
        client = holder._keyportal_limits_client = holder.get_client(write=True)
    return client


def _check_redis(
    cache: RedisCache,
    keys: list[str],
    windows: list[Window],
    budget_key: str | None,
    seed: int,
    found: Budget | None,
    consume: bool,
) -> tuple[int, list[int], list[int], int]:
    names = [cache.make_key(key) for key in keys]
    args: list[int] = [1 if consume else 0, len(windows)]
    for window in windows:
        args += [window.limit, window.seconds]
    if budget_key is not None and found is not None:
        names.append(cache.make_key(budget_key))
        args += [seed, _BUDGET_TTL[found.refill]]
    client = _client(cache)
    try:
        reply = client.evalsha(_SCRIPT_SHA, len(names), *names, *args)
    except NoScriptError:
        # Redis restarted, or never saw the script: send it once, by value.
        reply = client.eval(_SCRIPT, len(names), *names, *args)
    reply = [int(part) for part in reply]
    result, pairs, remaining = reply[0], reply[1:-1], reply[-1]
    return result, pairs[0::2], pairs[1::2], remaining


# --- any other cache: the same steps under this process's lock ---------------------------------

_local_lock = threading.Lock()


def _check_local(
    cache: BaseCache,
    keys: list[str],
    windows: list[Window],
    budget_key: str | None,
    seed: int,
    found: Budget | None,
    consume: bool,
    moment: float,
) -> tuple[int, list[int], list[int], int]:
    budget_ttl = _BUDGET_TTL[found.refill] if found is not None else 0
    with _local_lock:
        entries = []
        result = OK
        for key, window in zip(keys, windows, strict=True):
            count, ends = cache.get(key) or (0, None)
            if ends is None or ends <= moment:
                count, ends = 0, None
            entries.append((count, ends))
            if count >= window.limit:
                result = LIMITED
        remaining: int | None = None
        if budget_key is not None:
            remaining = cache.get(budget_key)
            if remaining is None:
                remaining = seed
                cache.set(budget_key, remaining, budget_ttl)
            if result == OK and remaining <= 0:
                result = EXHAUSTED
        counts, resets = [], []
        for key, window, (count, ends) in zip(keys, windows, entries, strict=True):
            if result == OK and consume:
                count += 1
                ends = ends or moment + window.seconds
                cache.set(key, (count, ends), window.seconds)
            counts.append(count)
            resets.append(max(int(-(-(ends - moment) // 1)), 0) if ends else window.seconds)
        if budget_key is not None and remaining is not None and result == OK and consume:
            remaining -= 1
            cache.set(budget_key, remaining, budget_ttl)
    return result, counts, resets, remaining if remaining is not None else -1


def peek(api_key: ApiKey) -> Outcome:
    """Return how far the key is into each window and its budget, counting nothing."""
    return check(api_key, consume=False)
