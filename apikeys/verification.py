"""Verification: the hot path every API request takes (DESIGN.md, "Verification: the hot path").

One function, `verify_token`, used by the API's authentication and by POST /api/v1/keys/verify:
format and checksum first (no query), then one indexed query by digest joined to what the state
checks need, then state, then effective permissions. Nothing about a key's state is cached, so a
disable, revoke, expiry, rotation or permission change holds from the very next request.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypedDict, cast

from django.conf import settings
from django.db import InterfaceError, OperationalError, connections, router
from django.db.backends.sqlite3.base import SQLiteCursorWrapper
from django.db.models import Model, OuterRef, Q, Subquery
from django.utils import timezone

from accounts.models import Membership
from apikeys import limits
from apikeys.models import ApiKey, KeyKind, KeyStatus
from apikeys.permissions import ALL, ROLE_PERMISSIONS
from apikeys.power import Power
from apikeys.protections import allowed_ips, ip_allowed
from keyportal_cli.tokens import has_token_format, token_digest

if TYPE_CHECKING:
    import psycopg
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models import QuerySet
    from django_stubs_ext import WithAnnotations

    from accounts.models import ServiceAccount, User


class KeyRejected(Exception):
    """The key cannot be used; `code` is the API's error code."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class KeyRefused(KeyRejected):
    """A valid key its own protections refuse (apikeys/protections.py): 403 ip_not_allowed or
    usage_exhausted, 429 rate_limited. Not a failed attempt: the key is known and works."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int,
        api_key: ApiKey,
        outcome: limits.Outcome | None = None,
        ip: str | None = None,
    ):
        super().__init__(code, message)
        self.status = status
        self.api_key = api_key
        self.outcome = outcome
        self.ip = ip  # the address an allowlist refused

    def headers(self) -> dict[str, str]:
        if self.code == "limits_unavailable":
            return {"Retry-After": "5"}
        if self.outcome is None:
            return {}
        headers = self.outcome.headers()
        if self.code == "rate_limited":
            headers["Retry-After"] = str(self.outcome.retry_after)
        return headers


INVALID = ("invalid_key", "The API key is not valid.")


@dataclass(frozen=True)
class VerifiedKey:
    api_key: ApiKey
    # The key's permissions cut to what its owner's role holds right now.
    permissions: frozenset[str] = field(default_factory=frozenset)
    # The permission the API operation declares (apikeys.api.routing), set by its authentication.
    route_permission: str | None = None
    # The person exploring the API as this key in the console (DESIGN rule 6), if any.
    explorer: Any = None
    # Sent with its previous secret, in the grace period of a rotation.
    previous_secret: bool = False
    # Its rate limits and budget as this request left them (apikeys.limits), if it has any.
    limits: Any = None

    def power(self) -> Power:
        """Return the key's grants with their scopes, cut to its owner's current role."""
        key = self.api_key
        if key.follows_role:
            return Power.over_organization(self.permissions)
        grants = Power.of_grants(key.permissions, key.scopes, project_id=key.owner_project_id)
        return grants.cut_to(self.permissions)


# What the lookup reads of the key's relations: what the checks, `whoami`, GET /organization
# and the owner's name need, and nothing more. Every column costs on every request (the
# database sends it, the driver and Django convert it); a user's password hash in particular
# has no business in an API request. Reading another field of these objects later costs one
# query, never a wrong value.
_RELATED_FIELDS = (
    "organization__name",
    "organization__slug",
    "organization__created_at",
    "owner_user__email",
    "owner_user__display_name",
    "owner_user__is_active",
    "owner_service_account__name",
    "owner_service_account__identifier",
    "owner_service_account__is_active",
    "owner_project__name",
)


# Columns of the key itself that no check reads: left out of the row, read later if ever.
_KEY_FIELDS = tuple(
    f.name
    for f in ApiKey._meta.concrete_fields
    if f.name not in {"compromise_report", "last_refused_ip", "last_refused_at"}
)


def _lookup_query(digest: str) -> QuerySet[ApiKey]:
    """The lookup as the ORM writes it: one row, joined to what the checks and the API read."""
    # The owner's current role comes in the same query, as a subquery, so a role change or a
    # removal counts from the next request without a second round trip.
    role = Membership.objects.filter(
        organization=OuterRef("organization_id"), user=OuterRef("owner_user_id")
    ).values("role")[:1]
    return (
        ApiKey.objects.select_related(
            "organization", "owner_user", "owner_service_account", "owner_project"
        )
        .only(*_KEY_FIELDS, *_RELATED_FIELDS)
        .annotate(owner_role=Subquery(role))
        .filter(Q(digest=digest) | Q(previous_digest=digest))
        # At most one key matches (digests are unique and random): no ORDER BY, no sort.
        .order_by()
    )[:1]


@dataclass(frozen=True)
class _Part:
    """Where one model's columns sit in the row, and the ApiKey relation it fills (None: the
    key itself)."""

    relation: str | None
    model: type[Model]
    start: int
    end: int
    attnames: tuple[str, ...]
    pk_offset: int


@dataclass(frozen=True)
class _Prepared:
    sql: str
    # The same statement in the driver's own parameter style, for `_execute`'s fast path.
    driver_sql: str
    parts: tuple[_Part, ...]
    role_index: int
    converters: tuple[tuple[int, tuple, Any], ...]


_SENTINEL = "digest-placeholder"
# The compiled lookup for each database alias, made once per process. It holds the text of the
# statement and the layout of its row, never a row: nothing about a key is kept between requests.
_prepared: dict[str, _Prepared] = {}


def _prepare(using: str) -> _Prepared:
    """Compile `_lookup_query` once and remember how to read its row, as Django's ModelIterable
    and select_related do."""
    compiler = _lookup_query(_SENTINEL).query.get_compiler(using=using)
    sql, params = compiler.as_sql()
    if list(params) != [_SENTINEL, _SENTINEL]:
        raise RuntimeError(f"Unexpected parameters in the key lookup: {params!r}")
    select, info = compiler.select, compiler.klass_info

    def part(relation: str | None, klass_info: dict) -> _Part:
        if klass_info.get("related_klass_infos") and relation is not None:
            raise RuntimeError("The key lookup reads one level of select_related only.")
        fields = klass_info["select_fields"]
        attnames = tuple(select[i][0].target.attname for i in fields)
        model = klass_info["model"]
        return _Part(
            relation=relation,
            model=model,
            start=fields[0],
            end=fields[-1] + 1,
            attnames=attnames,
            pk_offset=attnames.index(model._meta.pk.attname),
        )

    parts = [part(None, info)] + [
        part(related["field"].name, related) for related in info["related_klass_infos"]
    ]
    converters = compiler.get_converters([column[0] for column in select])
    return _Prepared(
        sql=sql,
        driver_sql=_driver_sql(connections[using], sql),
        parts=tuple(parts),
        role_index=compiler.annotation_col_map["owner_role"],
        converters=tuple((i, tuple(found), expr) for i, (found, expr) in converters.items()),
    )


def _driver_sql(connection: BaseDatabaseWrapper, sql: str) -> str:
    """Return `sql` in the parameter style the driver itself takes, as Django's cursor would
    convert it on every execution (SQLite's wrapper runs a regular expression over it)."""
    if connection.vendor == "sqlite":
        # Called without a cursor: the conversion reads nothing of one (Django 6.1).
        return SQLiteCursorWrapper.convert_query(cast(SQLiteCursorWrapper, None), sql)
    return sql


# A prepare threshold psycopg never reaches: with it set, psycopg prepares the statements it is
# asked to by name (the lookup) and nothing else, as when Django leaves the threshold unset.
_NEVER = 2**62


def _execute(connection: BaseDatabaseWrapper, prepared: _Prepared, digest: str) -> tuple | None:
    """Run the lookup and return its row.

    When nothing is recording queries (no DEBUG, no test counting them), the statement goes to
    the driver's cursor directly: Django's cursor wrapper costs as much again as SQLite takes to
    answer. The checks the wrapper makes on the way are made here too: the connection, a broken
    transaction, Django's database exceptions, and the per-request health check (done by the
    lookup itself outside a transaction, see below).

    On PostgreSQL the lookup is a prepared statement (KEYPORTAL_PREPARED_LOOKUP, on by default):
    planning its joins took about 0.6 ms a request, four times what executing it takes. Turn it
    off behind a pooler in transaction mode that cannot keep prepared statements (PgBouncer
    before 1.22, whose transaction mode cannot run the DEALLOCATE ALL psycopg sends on every
    rollback, or without max_prepared_statements).
    """
    params = (digest, digest)
    if connection.queries_logged or connection.vendor not in ("sqlite", "postgresql"):
        with connection.cursor() as cursor:
            cursor.execute(prepared.sql, params)
            found: tuple | None = cursor.fetchone()
            return found
    connection.validate_no_broken_transaction()
    if connection.in_atomic_block:
        # Inside a transaction a reconnection would lose it: check first, as Django's cursor does.
        connection.close_if_health_check_failed()
        return _execute_once(connection, prepared.driver_sql, params)
    # Outside one, the lookup is the health check: Django's would cost a `SELECT 1` round trip
    # before it on every request. A connection that went stale between requests (the database
    # restarted) fails the lookup instead; it is then replaced and the lookup runs again, once.
    # (django-stubs 6.1 lacks the health_check_* attributes Django has had since 4.1.)
    reused = connection.connection is not None and connection.health_check_enabled  # type: ignore[attr-defined]
    try:
        row = _execute_once(connection, prepared.driver_sql, params)
    except (InterfaceError, OperationalError):
        if not reused:
            raise
        connection.close()
        row = _execute_once(connection, prepared.driver_sql, params)
    # It has just answered: the rest of the request trusts it.
    connection.health_check_done = True  # type: ignore[attr-defined]  # (as above)
    return row


def _execute_once(connection: BaseDatabaseWrapper, sql: str, params: tuple) -> tuple | None:
    connection.ensure_connection()
    driver = connection.connection
    with connection.wrap_database_errors:
        if connection.vendor == "postgresql" and settings.KEYPORTAL_PREPARED_LOOKUP:
            return _execute_prepared(driver, sql, params)
        cursor = driver.cursor()
        try:
            cursor.execute(sql, params)
            row: tuple | None = cursor.fetchone()
            return row
        finally:
            cursor.close()


def _execute_prepared(driver: psycopg.Connection[Any], sql: str, params: tuple) -> tuple | None:
    """Run `sql` as a prepared statement of this psycopg connection (prepared on first use,
    and again by psycopg after a reconnection)."""
    import psycopg

    threshold = driver.prepare_threshold
    if threshold is None:
        driver.prepare_threshold = _NEVER
    try:
        # Server-side binding: psycopg's client-side cursors cannot prepare statements.
        with psycopg.Cursor(driver) as cursor:
            cursor.execute(sql, params, prepare=True)
            return cursor.fetchone()
    finally:
        driver.prepare_threshold = threshold


class _OwnerRole(TypedDict):
    # The lookup's annotation: the personal key's owner's role now (None: not a member).
    owner_role: str | None


if TYPE_CHECKING:
    LookedUpKey = WithAnnotations[ApiKey, _OwnerRole]


def _lookup(digest: str) -> LookedUpKey | None:
    """Run `_lookup_query(digest)`: the same SQL and the same instances as evaluating it.

    Only the ORM's work of building and compiling the query each time is skipped: it took
    about 1.3 ms a request, twenty times what the database spends answering it.
    """
    using = router.db_for_read(ApiKey)
    connection = connections[using]
    prepared = _prepared.get(using)
    if prepared is None:
        prepared = _prepared[using] = _prepare(using)
    row: Sequence[Any] | None = _execute(connection, prepared, digest)
    if row is None:
        return None
    row = list(row)
    for index, converters, expression in prepared.converters:
        for converter in converters:
            row[index] = converter(row[index], expression, connection)
    key_part, *related = prepared.parts
    api_key = cast(
        "LookedUpKey",
        key_part.model.from_db(using, key_part.attnames, row[key_part.start : key_part.end]),
    )
    api_key.owner_role = row[prepared.role_index]
    for part in related:
        values = row[part.start : part.end]
        # A LEFT OUTER JOIN that found nothing (no such owner) leaves None cached, as
        # select_related does, so reading the relation makes no query.
        instance = (
            None
            if values[part.pk_offset] is None
            else part.model.from_db(using, part.attnames, values)
        )
        setattr(api_key, cast(str, part.relation), instance)  # (related parts name theirs)
    return api_key


Address = str | Callable[[], str] | None


def verify_token(
    token: str, *, ip: Address = None, consume: bool = True, organization_id: int | None = None
) -> VerifiedKey:
    """Return the verified key for a token, or raise KeyRejected saying why it cannot be used.

    With `organization_id` (POST /keys/verify), a key of another organization is as unknown as
    one that does not exist: nothing of its state is told, nothing counted against it.

    `ip` is the address the request came from, or a function returning it (asked only for a
    key with an allowlist); None or "" is an unknown address, which no allowlist holds.
    `consume` counts the request against the key's rate limits and budget."""
    # A typo or a random string fails the checksum here, without touching the database.
    if not token or not has_token_format(token):
        raise KeyRejected(*INVALID)
    digest = token_digest(token)
    api_key = _lookup(digest)
    if api_key is None or organization_id not in (None, api_key.organization_id):
        raise KeyRejected(*INVALID)
    now = timezone.now()
    previous = api_key.digest != digest
    if previous and (api_key.previous_valid_until is None or api_key.previous_valid_until <= now):
        raise KeyRejected("invalid_key", "The API key was rotated; use its new secret.")
    verified = _verified(api_key, now)
    if api_key.protections:
        verified = _protected(verified, ip, consume)
    return dataclasses.replace(verified, previous_secret=True) if previous else verified


def verify_stored(api_key_id: int, *, ip: Address = None) -> VerifiedKey:
    """Verify a key by its id, as if its current secret had been sent (the Explorer's way of
    acting as a key whose secret nobody knows): the same lookup and the same checks, its
    protections included."""
    digest = ApiKey.objects.filter(pk=api_key_id).values_list("digest", flat=True).first()
    api_key = _lookup(digest) if digest else None
    if api_key is None:
        raise KeyRejected(*INVALID)
    verified = _verified(api_key, timezone.now())
    return _protected(verified, ip, True) if api_key.protections else verified


def _protected(verified: VerifiedKey, ip: Address, consume: bool) -> VerifiedKey:
    """Apply the key's own protections, read from its row: the allowlist, then its rate limits
    and budget in one round trip to the cache (apikeys.limits). Raise KeyRefused."""
    api_key = verified.api_key
    entries = allowed_ips(api_key.protections)
    if entries:
        address = ip() if callable(ip) else ip
        if not (address and ip_allowed(entries, address)):
            raise KeyRefused(
                "ip_not_allowed",
                f"This API key does not work from {address or 'an unknown address'}: it works "
                "only from the addresses on its allowlist.",
                status=403,
                api_key=api_key,
                ip=address or None,
            )
    if not limits.has_limits(api_key.protections):
        return verified
    try:
        outcome = limits.check(api_key, consume=consume)
    except limits.CacheUnavailable:
        # Err on refusing: a key with limits is not let through uncounted.
        raise KeyRefused(
            "limits_unavailable",
            "This API key's rate limits cannot be checked right now; retry shortly.",
            status=503,
            api_key=api_key,
        ) from None
    if outcome.result == limits.LIMITED:
        assert outcome.limited_by is not None  # the window that limited it (limits.check)
        window = outcome.windows[outcome.limited_by].window
        raise KeyRefused(
            "rate_limited",
            f"This API key is limited to {window.describe()}; retry in {outcome.retry_after} s.",
            status=429,
            api_key=api_key,
            outcome=outcome,
        )
    if outcome.result == limits.EXHAUSTED:
        found = outcome.budget
        refill = f" It is refilled {found.refill}." if found is not None and found.refill else ""
        raise KeyRefused(
            "usage_exhausted",
            f"This API key has used up its budget of requests.{refill}",
            status=403,
            api_key=api_key,
            outcome=outcome,
        )
    return dataclasses.replace(verified, limits=outcome)


def _verified(api_key: LookedUpKey, now: datetime) -> VerifiedKey:
    """Check the key's state and its owner's, from the row already read; return its power."""
    if api_key.compromised_at is not None:
        raise KeyRejected(
            "key_compromised",
            "The API key was reported leaked and no longer works. Create a new key.",
        )
    if api_key.revoked_at is not None:
        raise KeyRejected("key_revoked", "The API key has been revoked.")
    if api_key.status == KeyStatus.DISABLED:
        raise KeyRejected("key_disabled", "The API key is disabled.")
    if api_key.expires_at is not None and api_key.expires_at <= now:
        raise KeyRejected("key_expired", "The API key has expired.")
    ceiling = ALL
    if api_key.kind == KeyKind.USER:
        if api_key.owner_role is None:
            # The owner left the organization: their keys are as good as revoked.
            raise KeyRejected("invalid_key", "The API key's owner is no longer a member.")
        if not _active(api_key.owner_user):
            raise KeyRejected("key_disabled", "The API key's owner is deactivated.")
        ceiling = ROLE_PERMISSIONS[api_key.owner_role]
        if api_key.follows_role:
            # "Same as my role": the role as it is now, whatever the role was when it was made.
            return VerifiedKey(api_key=api_key, permissions=ceiling)
    elif api_key.kind == KeyKind.SERVICE_ACCOUNT and not _active(api_key.owner_service_account):
        raise KeyRejected("key_disabled", "The API key's service account is deactivated.")
    return VerifiedKey(api_key=api_key, permissions=frozenset(api_key.permissions) & ceiling)


def _active(owner: User | ServiceAccount | None) -> bool:
    """Return True for an owner who exists and is active."""
    return owner is not None and owner.is_active
