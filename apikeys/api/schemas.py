"""Request and response bodies of the API. Unknown fields in a request are refused."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from ninja import Schema
from pydantic import ConfigDict, Field, model_validator


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


class Strict(Schema):
    """A request body: unknown fields and NUL characters are refused before anything runs."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        # PostgreSQL cannot store NUL in text; refusing it here keeps bad input a 422.
        if _has_nul(data):
            raise ValueError("Text may not contain NUL (\\x00) characters.")
        return data


class ErrorDetail(Schema):
    code: str
    message: str


class Error(Schema):
    error: ErrorDetail


class Health(Schema):
    status: Literal["ok"]


class ScopeRef(Strict):
    type: Literal["team", "project", "target", "environment"]
    id: int


class Owner(Schema):
    type: Literal["user", "service_account", "project", "organization"]
    id: int
    name: str


class Key(Schema):
    id: int
    name: str
    kind: str
    preview: str
    status: str
    state: str
    permissions: list[str]
    scopes: dict[str, list[ScopeRef]]
    expires_at: datetime | None
    created_at: datetime
    last_used_at: datetime | None
    owner: Owner


class WhoAmI(Key):
    effective_permissions: list[str]
    organization: dict


class KeyCreate(Strict):
    name: str = Field("", max_length=100)
    kind: Literal["org", "project", "svc", "user"] = "org"
    owner_id: int | None = Field(
        None, description="project id, service account id, or member's user id"
    )
    permissions: list[str] = Field(min_length=1)
    scopes: dict[str, list[ScopeRef]] = Field(default_factory=dict)
    expires_at: datetime | None = None


class KeyCreated(Key):
    token: str = Field(description="The plaintext key. Shown in this response only.")


class KeyRotate(Strict):
    grace: Literal["now", "1h", "24h", "7d"] = "now"


class VerifyRequest(Strict):
    key: str = Field(max_length=200)


class VerifyResult(Schema):
    valid: bool
    code: str | None = None
    message: str | None = None
    key: Key | None = None
    effective_permissions: list[str] = []


class Named(Strict):
    name: str = Field(min_length=1, max_length=100)


class Item(Schema):
    id: int
    name: str
    created_at: datetime


class ProjectCreate(Named):
    team_id: int


class ProjectUpdate(Strict):
    name: str | None = Field(None, min_length=1, max_length=100)


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
    name: str = Field(min_length=1, max_length=100)


class MemberOut(Schema):
    user_id: int
    email: str
    display_name: str
    role: str
    joined_at: datetime


class MemberUpdate(Strict):
    role: Literal["owner", "admin", "member"]
