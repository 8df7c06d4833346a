"""Request and response bodies of the API. Unknown fields in a request are refused."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from ninja import Schema
from pydantic import AfterValidator, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from apikeys.protections import MAX_COUNT
from keyportal_cli.names import name_problem


def _has_nul(value: Any) -> bool:
    # A loop, not recursion: a body nested thousands of levels deep is a 422 from validation,
    # not a RecursionError here.
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str) and "\x00" in item:
            return True
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
    return False


class Strict(Schema):
    """Request input (a body, or the keys list's query parameters): unknown fields and NUL
    characters are refused before anything runs."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        # PostgreSQL can neither store nor compare text holding NUL: refused here, a 422.
        # (django-ninja hands this validator the raw input only when extra is forbidden.)
        if _has_nul(data):
            raise ValueError("Text may not contain NUL (\\x00) characters.")
        return data


def _in_utc(value: datetime) -> datetime:
    # A time without an offset is UTC, as in the console and the CLI. One whose UTC time falls
    # outside years 1 to 9999 is refused: SQLite cannot convert it and PostgreSQL would store
    # it, and then fail every read of the row.
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("The date is out of range once converted to UTC.") from None


# A date and time in a request, in UTC.
Moment = Annotated[datetime, AfterValidator(_in_utc)]


def _safe_name(value: str) -> str:
    problem = name_problem(value)
    if problem is not None:
        # A custom error, not a ValueError: its message reads without "Value error, " before it.
        raise PydanticCustomError("unsafe_name", problem)
    return value


# A name in a request: no control characters or text-direction overrides (422 naming the field).
Name = Annotated[str, AfterValidator(_safe_name)]


class ErrorDetail(Schema):
    code: str = Field(
        description="What went wrong, for programs: invalid_key, insufficient_scope, not_found, "
        "invalid_request, rate_limited... (the response's description lists those it may be)"
    )
    message: str = Field(description="What went wrong, for people")
    permission: str | None = Field(
        None, description="With insufficient_scope: the permission (or grant) the key lacks"
    )


class Error(Schema):
    """Every error: `{"error": {"code": "...", "message": "..."}}`."""

    error: ErrorDetail


# Every list: `?limit=&offset=`, answered with a Page. The keys table's limits.
PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
MAX_OFFSET = 10_000_000


class PageParams(Strict):
    """Where a page starts and how long it is: the query parameters of every list."""

    limit: int = Field(
        PAGE_SIZE,
        ge=1,
        le=MAX_PAGE_SIZE,
        description=f"At most this many items (1 to {MAX_PAGE_SIZE})",
    )
    offset: int = Field(0, ge=0, le=MAX_OFFSET, description="Skip this many items first")


class Page[Item_T](Schema):
    """One page of a list, the same for every list: `Page[Key]` is named KeyPage."""

    items: list[Item_T]
    total: int = Field(description="How many items the whole list holds")
    limit: int = Field(description="The page length asked for")
    offset: int = Field(description="Where this page starts")
    next_offset: int | None = Field(
        description="The offset of the next page; null on the last page"
    )

    def __class_getitem__(cls, item: Any) -> Any:
        # Page[Key] is the model KeyPage (ProjectPage for ProjectOut...): the OpenAPI document,
        # and the classes a client generates from it, name it so rather than "Page_Key_".
        concrete = super().__class_getitem__(item)  # type: ignore[misc]
        if cls is not Page or not isinstance(item, type) or not issubclass(item, Schema):
            return concrete
        name = f"{item.__name__.removesuffix('Out')}Page"
        if name not in _PAGES:
            _PAGES[name] = type(name, (concrete,), {"__module__": __name__, "__doc__": cls.__doc__})
        return _PAGES[name]


_PAGES: dict[str, type[Page]] = {}


class Health(Schema):
    status: Literal["ok"]


class ScopeRef(Strict):
    type: Literal["team", "project", "target", "environment"]
    id: int


class Owner(Schema):
    type: Literal["user", "service_account", "project", "organization"]
    id: int
    name: str


class Compromise(Schema):
    """Who reported a key leaked, and where, as the report says (never the secret)."""

    reported_by: Literal["github", "holder"] | None = Field(
        description="github (GitHub secret scanning) or holder (someone holding the key)"
    )
    url: str | None = Field(None, description="Where GitHub found it")
    repository: str | None = None
    file: str | None = None
    commit: str | None = None
    location: str | None = Field(None, description="Where the holder says it was found")


State = Literal["active", "disabled", "expired", "revoked", "compromised"]
WindowUnit = Literal["second", "minute", "hour", "day"]


class RateLimit(Strict):
    """At most `limit` requests per `window`; the window starts at the key's first request."""

    limit: int = Field(ge=1, le=MAX_COUNT, strict=True)
    window: WindowUnit


class BudgetIn(Strict):
    """A number of requests the key may make, refilled daily or monthly (UTC) if `refill`."""

    amount: int = Field(
        ge=0, le=MAX_COUNT, strict=True, description="Requests the key may make from now"
    )
    refill: Literal["daily", "monthly"] | None = None
    refill_amount: int | None = Field(
        None,
        ge=1,
        le=MAX_COUNT,
        strict=True,
        description="What each refill sets the budget back to",
    )


class BudgetOut(Schema):
    amount: int = Field(description="What the budget was set to")
    refill: Literal["daily", "monthly"] | None = None
    refill_amount: int | None = None
    remaining: int | None = Field(
        None,
        description="Requests left as last written, up to KEYPORTAL_USAGE_FLUSH_SECONDS behind; "
        "POST /keys/verify reports it live",
    )


def _one_ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise PydanticCustomError("ip", "Enter an IPv4 or IPv6 address.") from None


class Key(Schema):
    id: int
    name: str
    kind: str
    preview: str
    status: str
    state: State = Field(
        description="What a person reads: compromised (reported leaked; also revoked), revoked, "
        "expired, or the status"
    )
    permissions: list[str]
    preset: str
    scopes: dict[str, list[ScopeRef]]
    expires_at: datetime | None
    created_at: datetime
    last_used_at: datetime | None
    owner: Owner
    compromised_at: datetime | None = None
    compromise: Compromise | None = Field(None, description="The leak report, when compromised")
    allowed_ips: list[str] = Field(
        [], description="Addresses and CIDR ranges the key works from; empty: anywhere"
    )
    rate_limits: list[RateLimit] = []
    budget: BudgetOut | None = None
    last_refused_ip: str | None = Field(
        None, description="The last address the allowlist refused (not in whoami or verify)"
    )


class WhoAmI(Key):
    effective_permissions: list[str]
    organization: dict


Preset = Literal["role", "read-only", "project", "all", "custom"]


class KeyCreate(Strict):
    name: Name = Field("", max_length=100)
    kind: Literal["org", "project", "svc", "user"] = "org"
    owner_id: int | None = Field(
        None, description="project id, service account id, or member's user id"
    )
    permissions: list[str] | None = Field(
        None, min_length=1, description="Required unless a preset other than custom is given"
    )
    scopes: dict[str, list[ScopeRef]] = Field(default_factory=dict)
    preset: Preset = Field(
        "custom",
        description="role (personal keys: all the owner's role holds, following it), "
        "read-only, project (project keys: every permission that scopes to the project), all "
        "(everything the key making the request holds), or custom (the permissions given)",
    )
    expires_at: Moment | None = None
    allowed_ips: list[str] = Field(
        [],
        max_length=1000,
        description="Addresses and CIDR ranges (IPv4, IPv6) the key works from, at most 100",
    )
    rate_limits: list[RateLimit] | None = Field(
        None,
        max_length=4,
        description="Left out: the organization policy's default for the kind; [] for none",
    )
    budget: BudgetIn | None = None


class KeyUpdate(Strict):
    """What PATCH changes: only the fields given. `expires_at: null` means never."""

    name: Name | None = Field(None, min_length=1, max_length=100)
    status: Literal["active", "disabled"] | None = None
    permissions: list[str] | None = Field(None, min_length=1)
    preset: Preset | None = Field(None, description="As on create; permissions imply custom")
    scopes: dict[str, list[ScopeRef]] | None = Field(
        None, description="Per permission; permissions left out of it keep no scope."
    )
    expires_at: Moment | None = None
    allowed_ips: list[str] | None = Field(
        None, max_length=1000, description="Replaces the allowlist; [] removes it"
    )
    rate_limits: list[RateLimit] | None = Field(
        None, max_length=4, description="Replaces the limits; [] removes them"
    )
    budget: BudgetIn | None = Field(
        None, description="Sets the budget anew (counting starts from `amount`); null removes it"
    )

    @field_validator("name")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("A name cannot be blank.")
        return value


class KeyFilters(PageParams):
    """The keys table's filters, and the page, as query parameters."""

    name: str | None = Field(None, max_length=100, description="Part of the key's name")
    status: Literal["active", "disabled", "expired", "revoked", "compromised"] | None = Field(
        None,
        description="Any status but revoked when left out; revoked includes compromised keys",
    )
    kind: Literal["org", "project", "svc", "user"] | None = None
    owner: str | None = Field(
        None, max_length=254, description="A member's email or a service account's identifier"
    )
    unused: Literal["30", "90", "365", "never"] | None = Field(
        None,
        description="Not used for 30, 90 or 365 days (never used keys count from when they "
        "were made), or never used",
    )
    protection: Literal["ip_allowlist", "rate_limited", "budget"] | None = Field(
        None, description="Keys with an IP allowlist, with a rate limit, or with a usage budget"
    )

    @field_validator("name", "status", "kind", "owner", "unused", "protection", mode="before")
    @classmethod
    def _empty_is_no_filter(cls, value: Any) -> Any:
        # As in the console's table, where an empty field filters nothing (`?status=`).
        return None if value == "" else value


class KeyCreated(Key):
    token: str = Field(description="The plaintext key. Shown in this response only.")


class KeyRotate(Strict):
    grace: Literal["now", "1h", "24h", "7d"] = "now"


class VerifyRequest(Strict):
    key: str = Field(max_length=200)
    ip: Annotated[str, AfterValidator(_one_ip)] | None = Field(
        None,
        max_length=45,
        description="The address the key's own request came from, checked against its "
        "allowlist (a key with one is refused without it)",
    )
    consume: bool = Field(
        False,
        description="Count this check as one request of the key: against its rate limits and "
        "budget, as when it calls keyportal itself",
    )


class WindowState(Schema):
    window: WindowUnit
    limit: int
    remaining: int = Field(description="Requests left in the current window")
    reset: int = Field(description="Seconds until the window ends")


class BudgetState(Schema):
    remaining: int
    refill: Literal["daily", "monthly"] | None = None
    refill_amount: int | None = None


class VerifyResult(Schema):
    valid: bool
    code: str | None = Field(
        None,
        description="Why not valid: invalid_key, key_revoked, key_expired, key_disabled, "
        "key_compromised, ip_not_allowed, rate_limited, usage_exhausted",
    )
    message: str | None = None
    key: Key | None = Field(None, description="Also given when its protections refuse it")
    effective_permissions: list[str] = []
    rate_limits: list[WindowState] = []
    budget: BudgetState | None = None


class Named(Strict):
    name: Name = Field(min_length=1, max_length=100)


class Item(Schema):
    id: int
    name: str
    created_at: datetime


class TeamOut(Item):
    """A team."""


class ProjectCreate(Named):
    team_id: int


class ProjectUpdate(Strict):
    name: Name | None = Field(None, min_length=1, max_length=100)


class ProjectOut(Item):
    team_id: int


class TargetCreate(Named):
    project_id: int


class TargetOut(Item):
    project_id: int


class EnvironmentCreate(Named):
    target_id: int


class EnvironmentOut(Item):
    target_id: int


class OrganizationOut(Schema):
    id: int
    name: str
    slug: str
    created_at: datetime


class OrganizationUpdate(Strict):
    name: Name = Field(min_length=1, max_length=100)


class MemberOut(Schema):
    user_id: int
    email: str
    display_name: str
    role: str
    joined_at: datetime


class MemberUpdate(Strict):
    role: Literal["owner", "admin", "member"]
