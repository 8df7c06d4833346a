"""The CLI in-process (click's CliRunner), talking real HTTP to pytest-django's live server."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from django.db.models import F

from accounts.access import Actor
from accounts.models import User
from apikeys.device import device_approve
from apikeys.models import ApiKey, DeviceAuthorization, KeyKind
from apikeys.services import api_key_create
from keyportal_cli import credentials
from keyportal_cli import device_flow as login_module
from keyportal_cli.main import cli
from keyportal_cli.tokens import token_digest
from tests.apikeys.conftest import in_days
from tests.conftest import Org

Run = Callable[..., Result]
CLI_VARIABLES = (
    "KEYPORTAL_API_KEY",
    "KEYPORTAL_URL",
    "KEYPORTAL_POLL_INTERVAL",
    "KEYPORTAL_DEBUG",
)


@pytest.fixture
def cli_home(tmp_path, monkeypatch) -> Path:
    """Point the CLI's credentials folder at a fresh folder; forget the developer's settings."""
    home = tmp_path / "keyportal-home"
    monkeypatch.setenv("KEYPORTAL_HOME", str(home))
    for name in CLI_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def keyportal(live_server, cli_home) -> Run:
    """Return a function running `keyportal ARGS...` against the live server.

    KEYPORTAL_URL points at the live server unless `env` says otherwise (None unsets it).
    """

    def run(*args: str, env: dict[str, str | None] | None = None, input: str | None = None):
        environment = {"KEYPORTAL_URL": live_server.url, **(env or {})}
        return CliRunner().invoke(
            cli, list(args), env=environment, input=input, catch_exceptions=False
        )

    return run


def org_token(org: Org, permissions: list[str], name: str = "") -> str:
    """Return the token of a new organization key of `org`."""
    return api_key_create(
        actor=Actor(user=org.owner),
        organization=org.organization,
        kind=KeyKind.ORGANIZATION,
        permissions=sorted(permissions),
        name=name,
    )[1]


def personal_key(
    org: Org, user: User | None = None, permissions: list[str] | None = None, name: str = ""
) -> tuple[ApiKey, str]:
    """Return a new 7-day personal key of `user` (the member by default) and its token."""
    user = user or org.member
    return api_key_create(
        actor=Actor(user=user),
        organization=org.organization,
        kind=KeyKind.USER,
        owner=user,
        name=name,
        permissions=permissions or ["projects:read"],
        expires_at=in_days(7),
    )


def key_of(token: str) -> ApiKey:
    """Return the stored key a token belongs to."""
    return ApiKey.objects.get(digest=token_digest(token))


def store(url: str, token: str, **extra) -> Path:
    """Write a credentials file as `keyportal login` does, holding `token`."""
    return credentials.save({"url": url, "api_key": token, **extra})


def secret_part(token: str) -> str:
    """Return what a token holds beyond its preview."""
    return token[token.index("-", 3) + 1 : -4]


def assert_never_shown(result: Result, *tokens: str) -> None:
    """Assert no output of the command holds any of `tokens`, whole or its secret part."""
    for token in tokens:
        for text in (result.stdout, result.stderr, result.output):
            assert token not in text
            assert secret_part(token) not in text


# --- the device login, in the same process: time moved by hand, approval at the n-th wait ---


class Clock:
    """Stands in for the device login's sleep (keyportal_cli.device_flow); `on_wait(n)` runs during the n-th wait."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.frozen: set[int] = set()  # waits during which no time passes for the server
        self.on_wait: Callable[[int], None] | None = None

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        if len(self.waits) not in self.frozen:
            DeviceAuthorization.objects.filter(last_polled_at__isnull=False).update(
                last_polled_at=F("last_polled_at") - timedelta(seconds=seconds)
            )
        if self.on_wait is not None:
            self.on_wait(len(self.waits))


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(login_module, "sleep", clock.sleep)
    return clock


def user_code() -> str:
    return DeviceAuthorization.objects.get(state="pending").user_code


def approve_on(clock: Clock, wait: int, org, user=None) -> None:
    def on_wait(n: int) -> None:
        if n == wait:
            device_approve(
                user=user or org.member, organization=org.organization, user_code=user_code()
            )

    clock.on_wait = on_wait


def stored_login(url: str, org: Org) -> tuple[dict, ApiKey]:
    """Return the credentials file a login wrote and its key, checking it holds what
    `keyportal login` stores: the server, the key and its name, the organization, the expiry."""
    stored = credentials.load()
    key = key_of(stored["api_key"])
    assert stored == {
        "url": url,
        "api_key": stored["api_key"],
        "key_id": key.pk,
        "key_name": key.name,
        "organization": {"id": org.organization.pk, "name": "Acme", "slug": "acme"},
        "expires_at": stored["expires_at"],
    }
    return stored, key
