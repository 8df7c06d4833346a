"""A real gunicorn with two sync workers, over a database of its own, for the integration tests.

The server is a separate process, so pytest-django's test database and its transactions are of
no use to it. The `server` fixture makes a scratch database instead (a file-backed SQLite one in
a temporary folder, or a fresh PostgreSQL database next to the one DATABASE_URL names), migrates
it, loads the demo organizations, and starts gunicorn on 127.0.0.1 and a free port. Keys are made
with `manage.py create_api_key`, as an operator would. Everything is stopped and removed at the
end of the module, whatever happens; every step has a time limit.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.integration.probe_wsgi import WORKER_HEADER

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
WORKERS = 2


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", "integration: runs against a real gunicorn in processes of its own"
    )


def on_postgres() -> bool:
    return os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))


@contextlib.contextmanager
def scratch_database(folder: Path) -> Iterator[str]:
    """Yield the DATABASE_URL of a database made for the server alone; remove it afterwards."""
    if not on_postgres():
        yield f"sqlite:///{folder / 'server.sqlite3'}"  # removed with the temporary folder
        return
    import psycopg

    given = urlsplit(os.environ["DATABASE_URL"])
    name = f"keyportal_it_{os.getpid()}_{secrets.token_hex(3)}"
    admin = {
        "host": given.hostname or HOST,
        "port": given.port or 5432,
        "user": given.username or "postgres",
        "password": given.password or None,
        "dbname": "postgres",
        "connect_timeout": 5,
        "autocommit": True,
    }
    with psycopg.connect(**admin) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield given._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(**admin) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: dict

    @property
    def worker(self) -> str:
        return self.headers[WORKER_HEADER]

    @property
    def code(self) -> str | None:
        return (self.body.get("error") or {}).get("code")


@dataclass
class Server:
    """The running gunicorn, and the environment its `manage.py` commands share."""

    port: int
    env: dict[str, str]
    log: Path
    process: subprocess.Popen | None = None
    workers: int = WORKERS
    tokens: dict[str, str] = field(default_factory=dict)

    def request(self, method: str, path: str, token: str | None = None, body=None) -> Answer:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn = http.client.HTTPConnection(HOST, self.port, timeout=10)
        try:
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            raw = response.read()
            return Answer(
                response.status,
                dict(response.getheaders()),
                json.loads(raw) if raw.startswith(b"{") else {},
            )
        finally:
            conn.close()

    def manage(self, *args: str, timeout: float = 60) -> str:
        return run_python(self.env, "manage.py", *args, timeout=timeout)

    def create_keys(self, permissions: dict[str, str], timeout: float = 60) -> dict[str, str]:
        """Make one organization key per name with `manage.py create_api_key`, side by side;
        return the tokens they printed."""
        running = {
            name: subprocess.Popen(  # noqa: S603 (this interpreter, this project's manage.py)
                [
                    sys.executable,
                    "manage.py",
                    "create_api_key",
                    "--organization",
                    "acme",
                    "--name",
                    name,
                    "--permissions",
                    perms,
                    # The demo's key policy wants organization keys to expire within 90 days.
                    "--expires-in-days",
                    "30",
                ],
                cwd=ROOT,
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for name, perms in permissions.items()
        }
        tokens = {}
        for name, process in running.items():
            out, err = process.communicate(timeout=timeout)
            assert process.returncode == 0, f"create_api_key {name} failed:\n{err[-2000:]}"
            tokens[name] = out.strip()
            assert tokens[name].startswith("sk-org-"), out
        return tokens


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def scratch_env(folder: Path, database_url: str, *, drop=(), **settings: str) -> dict[str, str]:
    """Return the environment of a process over a scratch database: this one's, without Redis
    or a mail server (each process would otherwise share or send what the tests do not see),
    its files under `folder`, and `settings` on top."""
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "EMAIL_HOST", *drop}}
    env.update(
        DJANGO_SETTINGS_MODULE="keyportal.settings",
        DATABASE_URL=database_url,
        DEBUG="false",
        KEYPORTAL_MEDIA_ROOT=str(folder / "media"),
        PYTHONUNBUFFERED="1",
        **settings,
    )
    return env


def run_python(env: dict[str, str], *args: str, timeout: float = 60) -> str:
    """Run this interpreter with `args` from the project's folder; return what it printed,
    or fail the test with the end of its output."""
    done = subprocess.run(  # noqa: S603 (this interpreter, this project's modules)
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{args} failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
    return done.stdout


def _wait_until_up(server: Server, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"gunicorn exited early:\n{server.log.read_text(errors='replace')}")
        with contextlib.suppress(OSError):
            if server.request("GET", "/api/v1/health").status == 200:
                return
        time.sleep(0.1)
    pytest.fail(f"gunicorn did not answer within {timeout:.0f} s")


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    """Start gunicorn (2 sync workers) over a scratch database with the demo organizations."""
    folder = tmp_path_factory.mktemp("gunicorn")
    with scratch_database(folder) as database_url:
        env = scratch_env(
            folder,
            database_url,
            drop=("GUNICORN_CMD_ARGS", "KEYPORTAL_USAGE_FLUSH_SECONDS"),
            # Each refusal counts as a failed attempt from 127.0.0.1; a high limit keeps the
            # answers 401 with their code rather than 429 (the limiter is tested elsewhere).
            KEYPORTAL_API_AUTH_FAILURES_PER_MINUTE="100000",
        )
        yield from demo_server(folder, env)


# --- the same server with Redis as its cache (REDIS_URL), for what must hold across workers ----

# keyportal.settings gives Redis the fixed KEY_PREFIX "keyportal" (no setting changes it), and
# the scratch databases number their keys alike, so this server gets a Redis database of its own
# (not the unit tests' 14): it clears the keys with that prefix there, never the whole database,
# and one run at a time holds it (REDIS_LOCK), so a CI clone beside a working copy waits its turn.
REDIS_URL = os.environ.get("KEYPORTAL_IT_REDIS_URL", "redis://127.0.0.1:6379/13")
REDIS_PREFIX = "keyportal:"
REDIS_LOCK = "keyportal-it-lock"
REDIS_LOCK_SECONDS = 120


def redis_or_skip(url: str = REDIS_URL):
    """Return a client of the Redis at `url`; skip when it does not answer, with the reason,
    unless KEYPORTAL_REQUIRE_REDIS is set (CI sets it when Redis answers): then fail."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        client.close()
        reason = f"Redis does not answer at {url} ({error})"
        if os.environ.get("KEYPORTAL_REQUIRE_REDIS"):
            pytest.fail(f"{reason}, and KEYPORTAL_REQUIRE_REDIS is set")
        pytest.skip(reason)
    return client


def clear_prefixed(client, prefix: str = REDIS_PREFIX) -> int:
    """Delete the keys under `prefix` (never FLUSHDB); return how many there were."""
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    return len(keys)


@contextlib.contextmanager
def redis_held(client, timeout: float = 60) -> Iterator[None]:
    """Hold this run's claim on the Redis database, its prefixed keys cleared before and after."""
    token = secrets.token_hex(8)
    deadline = time.monotonic() + timeout
    while not client.set(REDIS_LOCK, token, nx=True, ex=REDIS_LOCK_SECONDS):
        if time.monotonic() > deadline:
            pytest.fail(f"another run held {REDIS_LOCK} in {REDIS_URL} for {timeout:.0f} s")
        time.sleep(0.2)
    try:
        clear_prefixed(client)
        yield
    finally:
        clear_prefixed(client)
        if client.get(REDIS_LOCK) == token.encode():
            client.delete(REDIS_LOCK)


def demo_server(folder: Path, env: dict[str, str]) -> Iterator[Server]:
    """Migrate the scratch database, load the demo, run gunicorn over it while the caller
    holds it, and stop it afterwards, whatever happens."""
    server = Server(port=free_port(), env=env, log=folder / "gunicorn.log")
    server.manage("migrate", "--noinput", "--verbosity", "0", timeout=120)
    server.manage("seed_demo", timeout=60)
    try:
        start_gunicorn(server, folder)
        yield server
    finally:
        if server.process is not None:
            _stop(server.process)


def start_gunicorn(server: Server, folder: Path) -> None:
    """Start gunicorn as the `server` fixture does (probe_wsgi, 2 sync workers) and wait until
    it answers; stop it with `_stop(server.process)`."""
    config = folder / "gunicorn.conf.py"
    config.write_text("")  # so no other gunicorn.conf.py is read
    server.process = subprocess.Popen(  # noqa: S603 (this interpreter's gunicorn)
        [
            sys.executable,
            "-m",
            "gunicorn",
            "tests.integration.probe_wsgi:application",
            "--config",
            str(config),
            "--workers",
            str(server.workers),
            "--worker-class",
            "sync",
            "--bind",
            f"{HOST}:{server.port}",
            "--error-logfile",
            str(server.log),
            "--log-level",
            "warning",
            "--graceful-timeout",
            "5",
        ],
        cwd=ROOT,
        env=server.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    _wait_until_up(server)


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory) -> Iterator[Server]:
    """The `server` fixture's gunicorn with REDIS_URL set: Django's cache, and with it the keys'
    rate limits and budgets (apikeys/limits.py), shared by both workers in Redis."""
    client = redis_or_skip()
    folder = tmp_path_factory.mktemp("gunicorn-redis")
    try:
        with redis_held(client), scratch_database(folder) as database_url:
            env = scratch_env(
                folder,
                database_url,
                drop=(
                    "GUNICORN_CMD_ARGS",
                    "KEYPORTAL_USAGE_FLUSH_SECONDS",
                    "KEYPORTAL_LIMITS_CACHE",
                ),
                KEYPORTAL_API_AUTH_FAILURES_PER_MINUTE="100000",
            )
            env["REDIS_URL"] = REDIS_URL  # after scratch_env, which leaves any REDIS_URL out
            yield from demo_server(folder, env)
    finally:
        client.close()
