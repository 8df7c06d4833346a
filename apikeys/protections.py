"""A key's own protections beyond its grants: the addresses it works from, its rate limits and
its usage budget (DESIGN.md, "Verification: the hot path", step 4).

They live on the key's row, in one JSON column (`ApiKey.protections`), so verification reads
them with the key and a key without protections costs nothing more than reading `{}`:

    {"allowed_ips": ["203.0.113.0/24", "2001:db8::1"],
     "rate_limits": [{"limit": 100, "window": "minute"}, {"limit": 10000, "window": "day"}],
     "budget": {"amount": 50000, "refill": "monthly", "refill_amount": 50000, "version": 3}}

This module cleans what people and programs send (every problem named by its field, nothing
saved) and answers the allowlist; apikeys.limits counts rate limits and budgets in the cache.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from django.core.exceptions import ValidationError

MAX_ALLOWED_IPS = 100
# Seconds in each rate-limit window a key may have, shortest first.
WINDOWS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
REFILLS = {"daily": "Daily", "monthly": "Monthly"}
# Larger limits or budgets mean nothing a key could reach, and must fit a 64-bit counter.
MAX_COUNT = 1_000_000_000_000
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
EVERYONE = "allows every address: leave the list empty instead"


@dataclass(frozen=True)
class Window:
    limit: int
    window: str

    @property
    def seconds(self) -> int:
        return WINDOWS[self.window]

    def describe(self) -> str:
        return f"{self.limit:,} per {self.window}"


@dataclass(frozen=True)
class Budget:
    """A number of requests left, refilled daily or monthly to `refill_amount` if `refill`.

    `version` changes whenever someone sets the budget, so counting restarts from the new
    amount at once (apikeys.limits keys its counter by it)."""

    amount: int
    refill: str = ""
    refill_amount: int | None = None
    version: str = ""

    def period(self, now: datetime) -> str:
        """Return the refill period `now` falls in (UTC): its day, its month, or "" without a
        refill. The counter starts again, full, in each new period."""
        if self.refill == "daily":
            return f"{now:%Y-%m-%d}"
        if self.refill == "monthly":
            return f"{now:%Y-%m}"
        return ""

    def describe(self) -> str:
        text = f"{self.amount:,} requests"
        if self.refill:
            text += f", refilled {self.refill} to {self.refill_amount:,}"
        return text

    def as_json(self) -> dict[str, Any]:
        value: dict[str, Any] = {"amount": self.amount, "version": self.version}
        if self.refill:
            value |= {"refill": self.refill, "refill_amount": self.refill_amount}
        return value


# --- reading the row ---------------------------------------------------------------------------


def allowed_ips(protections: dict) -> list[str]:
    return protections.get("allowed_ips") or []


def rate_limits(protections: dict) -> list[Window]:
    return [Window(item["limit"], item["window"]) for item in protections.get("rate_limits", ())]


def budget(protections: dict) -> Budget | None:
    value = protections.get("budget")
    if not value:
        return None
    return Budget(
        amount=value["amount"],
        refill=value.get("refill", ""),
        refill_amount=value.get("refill_amount"),
        version=value.get("version", ""),
    )


@lru_cache(maxsize=1024)
def _networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    # Parsed once per process per distinct list: the list itself is read from the key's row on
    # every request, so an edit counts from the next one (this maps text to networks, nothing
    # about a key's state).
    return tuple(ipaddress.ip_network(entry) for entry in entries)


@lru_cache(maxsize=1024)
def _ranges(entries: tuple[str, ...]) -> tuple[tuple[int, int, int], ...]:
    # Each entry as (IP version, network as an integer, mask): a membership test is then two
    # integer operations, not an ipaddress comparison.
    return tuple(
        (network.version, int(network.network_address), int(network.netmask))
        for network in _networks(entries)
    )


@lru_cache(maxsize=4096)
def _address(address: str) -> tuple[int, int] | None:
    # The few addresses a key is used from, parsed once each: (IP version, integer), with
    # ::ffff:203.0.113.5 (how a dual-stack socket reports IPv4) as the IPv4 address it is.
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None  # no address at all (a unix socket): it cannot be on the list
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.version, int(ip)


def ip_allowed(entries: list[str], address: str) -> bool:
    """Return True when `address` falls in one of the entries (addresses or CIDR ranges)."""
    parsed = _address(address)
    if parsed is None:
        return False
    version, number = parsed
    return any(
        version == v and number & mask == network for v, network, mask in _ranges(tuple(entries))
    )


# --- cleaning what is sent ---------------------------------------------------------------------


def clean_allowed_ips(values: Sequence[str] | str) -> list[str]:
    """Return the entries as canonical addresses and ranges, in order, without repeats; raise
    ValidationError on `allowed_ips` naming the first bad entry. Text is split on commas, spaces
    and lines (the console's field)."""
    if isinstance(values, str):
        values = values.replace(",", " ").split()
    cleaned: list[str] = []
    for raw in values:
        entry = str(raw).strip()
        if not entry:
            continue
        cleaned.append(_clean_entry(entry))
    cleaned = list(dict.fromkeys(cleaned))
    if len(cleaned) > MAX_ALLOWED_IPS:
        raise ValidationError(
            {
                "allowed_ips": f"At most {MAX_ALLOWED_IPS} addresses or ranges "
                f"({len(cleaned)} given): use wider ranges."
            }
        )
    return cleaned


def _clean_entry(entry: str) -> str:
    problem = f"“{entry[:60]}” is not an IPv4 or IPv6 address or CIDR range (like 203.0.113.0/24)."
    try:
        if "/" not in entry:
            address = ipaddress.ip_address(entry)
            mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:a.b.c.d is a.b.c.d
            return str(mapped or address)
        network = ipaddress.ip_network(entry)
    except ValueError:
        try:
            meant = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ValidationError({"allowed_ips": problem}) from None
        raise ValidationError(
            {"allowed_ips": f"{entry} has bits set after its prefix: did you mean {meant}?"}
        ) from None
    mapped = network.network_address.ipv4_mapped if network.version == 6 else None
    if mapped is not None and network.prefixlen >= 96:
        # ::ffff:a.b.c.d/n is the IPv4 range a.b.c.d/(n-96): clients are compared as IPv4.
        network = ipaddress.ip_network((mapped, network.prefixlen - 96))
    if network.prefixlen == 0:
        raise ValidationError({"allowed_ips": f"{entry} {EVERYONE}."})
    if network.num_addresses == 1:
        return str(network.network_address)
    return str(network)


def clean_rate_limits(values: list[dict] | list[Window]) -> list[Window]:
    """Return the windows, shortest first, one per unit; raise ValidationError on `rate_limits`."""
    windows: dict[str, Window] = {}
    for value in values:
        limit, unit = (
            (value.limit, value.window)
            if isinstance(value, Window)
            else (value.get("limit"), value.get("window"))
        )
        if unit not in WINDOWS:
            offered = ", ".join(WINDOWS)
            raise ValidationError(
                {"rate_limits": f"“{unit}” is not a window: choose one of {offered}."}
            )
        limit = _check_count("rate_limits", limit, f"The limit per {unit}")
        if unit in windows:
            raise ValidationError({"rate_limits": f"Give one limit per {unit}, not two."})
        windows[unit] = Window(int(limit), unit)
    return sorted(windows.values(), key=lambda window: window.seconds)


def clean_budget(amount: Any, refill: str | None = "", refill_amount: Any = None) -> Budget | None:
    """Return the budget (None for no budget); raise ValidationError on `budget`."""
    if amount is None or amount == "":
        if refill or refill_amount not in (None, ""):
            raise ValidationError({"budget": "Give the number of requests the budget starts with."})
        return None
    _check_count("budget", amount, "The budget", zero=True)
    refill = refill or ""
    if refill and refill not in REFILLS:
        raise ValidationError({"budget": "The refill is daily, monthly, or none."})
    if refill and refill_amount in (None, ""):
        raise ValidationError(
            {"budget": f"Give the amount a {refill} refill sets the budget back to."}
        )
    if not refill and refill_amount not in (None, ""):
        raise ValidationError({"budget": "A refill amount needs a refill: daily or monthly."})
    if refill:
        _check_count("budget", refill_amount, "The refill amount")
    return Budget(
        amount=int(amount),
        refill=refill,
        refill_amount=int(refill_amount) if refill else None,
        version=secrets.token_hex(4),
    )


def _check_count(field: str, value: Any, what: str, *, zero: bool = False) -> int:
    """Return `value`, a whole number in range; raise ValidationError on `field` if it is not."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError({field: f"{what} must be a whole number."})
    if value < (0 if zero else 1):
        least = "0 or more" if zero else "at least 1"
        raise ValidationError({field: f"{what} must be {least}."})
    if value > MAX_COUNT:
        raise ValidationError({field: f"{what} must be at most {MAX_COUNT:,}."})
    return value


def as_json(
    *, allowed_ips: list[str], rate_limits: list[Window], budget: Budget | None
) -> dict[str, Any]:
    """Return the protections as the row stores them: only what is set, `{}` for none."""
    value: dict[str, Any] = {}
    if allowed_ips:
        value["allowed_ips"] = list(allowed_ips)
    if rate_limits:
        value["rate_limits"] = [{"limit": w.limit, "window": w.window} for w in rate_limits]
    if budget is not None:
        value["budget"] = budget.as_json()
    return value


def describe(protections: dict) -> list[str]:
    """Return each protection in words, for the history and the console."""
    lines = []
    if entries := allowed_ips(protections):
        lines.append("works only from " + ", ".join(entries))
    if windows := rate_limits(protections):
        lines.append("at most " + " and ".join(w.describe() for w in windows))
    if (found := budget(protections)) is not None:
        lines.append("a budget of " + found.describe())
    return lines


def loosens(before: dict, after: dict, remaining: int | None = None) -> bool:
    """Return True when `after` lets the key do anything `before` did not: an address outside
    the old allowlist (or no allowlist), a window dropped or raised, a budget removed, larger
    than what is left (`remaining`, as last written), or refilled more often or more."""
    old_ips, new_ips = allowed_ips(before), allowed_ips(after)
    if old_ips and (
        not new_ips
        or not all(
            any(_within(new, old) for old in _collapsed(_networks(tuple(old_ips))))
            for new in _networks(tuple(new_ips))
        )
    ):
        return True
    new_windows = {w.window: w.limit for w in rate_limits(after)}
    if any(new_windows.get(w.window, MAX_COUNT + 1) > w.limit for w in rate_limits(before)):
        return True
    old_budget, new_budget = budget(before), budget(after)
    if old_budget is None or old_budget == new_budget:
        return False
    if new_budget is None:
        return True
    left = old_budget.amount if remaining is None else min(remaining, old_budget.amount)
    if new_budget.amount > left:
        return True
    return bool(new_budget.refill) and (
        _OFTEN[new_budget.refill] > _OFTEN[old_budget.refill]
        or (new_budget.refill_amount or 0) > (old_budget.refill_amount or 0)
    )


# How often a budget is refilled: a monthly refill comes on a day a daily one would too.
_OFTEN = {"": 0, "monthly": 1, "daily": 2}


def _within(inner: Network, outer: Network) -> bool:
    # An IPv4 network is never within an IPv6 one, nor the reverse.
    if isinstance(inner, ipaddress.IPv4Network):
        return isinstance(outer, ipaddress.IPv4Network) and inner.subnet_of(outer)
    return isinstance(outer, ipaddress.IPv6Network) and inner.subnet_of(outer)


def _collapsed(networks: Sequence[Network]) -> list[Network]:
    # Adjacent ranges as one (10.0.0.0/9 and 10.128.0.0/9 are 10.0.0.0/8), per IP version.
    return [
        *ipaddress.collapse_addresses(n for n in networks if isinstance(n, ipaddress.IPv4Network)),
        *ipaddress.collapse_addresses(n for n in networks if isinstance(n, ipaddress.IPv6Network)),
    ]
