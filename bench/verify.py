#!/usr/bin/env python3
"""Benchmark the key-verification hot path against a real gunicorn (issue 4, item 7).

For each database (SQLite in a temporary folder; PostgreSQL when it answers on 127.0.0.1:5432,
in a fresh database this script creates and drops) it:

1. migrates, seeds the demo data with `seed_demo --keys N` (100,000 by default) and mints keys
   with `manage.py create_api_key`;
2. starts gunicorn (`keyportal.wsgi:application`, 2 sync workers, 127.0.0.1 on a free port, no
   access log, the usage buffer flushed every KEYPORTAL_USAGE_FLUSH_SECONDS as configured), with
   REDIS_URL set (`--redis-url`, a database of its own) for the whole run when Redis answers;
3. warms up, then loads `GET /api/v1/health` (no key) and `GET /api/v1/whoami` (a bearer key)
   alternately with wrk, several rounds each, and reports the median requests/s of each and
   their ratio (target: whoami at least 0.80 of health). In the same rounds, interleaved with
   them, whoami with two keys that have protections (apikeys/protections.py), each against the
   plain key: one with an IP allowlist of 10 entries, 127.0.0.1 in the last (target: within 3 %
   of the plain key), and one with a rate limit it never reaches (10^9 a minute), counted in
   Redis (target: at least 0.85 of the plain key; not measured without Redis);
4. revokes a key through `POST /api/v1/keys/{id}/revoke` while threads of its own hammer
   `/api/v1/whoami` with that key (and wrk keeps loading the server), and counts the requests
   with it that were accepted (200) although they started after the revoke had committed
   (target: 0).

Everything it starts (gunicorn, wrk, the temporary folder, the PostgreSQL database) it stops or
removes, whatever happens; it talks to 127.0.0.1 only, and every phase is bounded in time.

    .venv/bin/python bench/verify.py                       # both databases, 100,000 keys
    .venv/bin/python bench/verify.py --keys 1000 --rounds 1 --duration 3 --databases sqlite
    .venv/bin/python bench/verify.py --databases sqlite-query-only,postgres-query-only  # bound
    .venv/bin/python bench/verify.py --databases sqlite-lookup-only,postgres-lookup-only

The protected keys are made with create_api_key's --allow-ip and --rate-limit. In the
`--redis-url` database, keyportal's keys (its prefix) are deleted before and after each
database's run; the database itself is never flushed.

wrk is Debian's package `wrk`: when it is missing the script installs it with apt-get if it runs
as root, and otherwise says how (`sudo apt-get install wrk`).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
TARGET_RATIO = 0.80
# The protected keys' whoami req/s against the plain key's, measured on the same server.
PROTECTED_TARGETS = {"allowlist": 0.97, "limited": 0.85}
PROTECTED_LABELS = {
    "allowlist": "IP allowlist (10)",
    "limited": "rate limit (Redis)",
}
# 127.0.0.1 (the client) falls in the last entry: every entry is tried before the match.
ALLOWLIST = [f"198.51.100.{16 * n}/28" for n in range(9)] + ["127.0.0.0/24"]
NEVER_REACHED = "1000000000/minute"
REDIS_URL = "redis://127.0.0.1:6379/12"
REDIS_PREFIX = "keyportal:"  # keyportal.settings' KEY_PREFIX for Redis (not configurable)
PG_SERVER = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"
PG_URL = "postgres://postgres@127.0.0.1:5432/{name}"
LABELS = {
    "sqlite": "SQLite",
    "postgres": "PostgreSQL",
    "postgres-prepared": "PostgreSQL*",
    "sqlite-query-only": "SQLite, query only",
    "postgres-query-only": "PostgreSQL, query only",
    "sqlite-lookup-only": "SQLite, lookup only",
    "postgres-lookup-only": "PostgreSQL, lookup only",
}
# `--databases postgres-prepared`: PostgreSQL with settings keyportal does not use by default,
# to measure what they would give: server-side binding with prepared statements (Django turns
# them off so that transaction-mode connection poolers work) and no per-request health check
# (a `SELECT 1` before the first query of every request).
PREPARED_SETTINGS = """\
from keyportal.settings import *  # noqa: F403

DATABASES["default"]["OPTIONS"] = {
    **DATABASES["default"].get("OPTIONS", {}),
    "server_side_binding": True,
    "prepare_threshold": 5,
}
DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
"""


# `--databases sqlite-query-only,postgres-query-only`: a bound, not keyportal. The server's
# verification is cut to the least that DESIGN.md's hot path allows: the format check and one
# indexed query by digest on every request (`SELECT id ... WHERE digest = ?`, on the driver's
# cursor, prepared on PostgreSQL), whose row is thrown away; the key verified on its first use
# is answered again (which no product may do: it caches key state). No joins, no checks, no
# conversion, no model: whoami's cost beyond health here is what any verification that asks the
# database on every request must pay, so its ratio bounds every such design on this machine.
# `...-lookup-only` runs keyportal's own lookup query instead (its joins and columns, through
# apikeys.verification._execute), row discarded: what the query costs, apart from what is done
# with its row.
QUERY_ONLY_APP = """\
from keyportal.wsgi import application  # noqa: F401  (sets Django up)
from django.db import connections
from apikeys import verification
from apikeys.api import auth
from keyportal_cli.tokens import has_token_format, token_digest

_first = {{}}


def bare_lookup(digest):
    connection = connections["default"]
    connection.ensure_connection()
    driver = connection.connection
    if connection.vendor == "postgresql":
        sql = 'SELECT "id" FROM "apikeys_apikey" WHERE "digest" = %s'
        return verification._execute_prepared(driver, sql, (digest,))
    cursor = driver.cursor()
    try:
        cursor.execute('SELECT "id" FROM "apikeys_apikey" WHERE "digest" = ?', (digest,))
        return cursor.fetchone()
    finally:
        cursor.close()


def keyportal_lookup(digest):
    connection = connections["default"]
    return verification._execute(connection, verification._prepared["default"], digest)


LOOKUP = {lookup}


def query_only(token):
    if not has_token_format(token):
        raise verification.KeyRejected(*verification.INVALID)
    if token not in _first:
        _first[token] = verification.verify_token(token)
    else:
        LOOKUP(token_digest(token))
    return _first[token]


auth.verify_token = query_only
"""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --------------------------------------------------------------------------- tools and databases


def ensure_wrk() -> str:
    """Return wrk's path, installing Debian's package when running as root; else explain."""
    found = shutil.which("wrk")
    if found:
        return found
    apt_get = shutil.which("apt-get")
    if os.geteuid() == 0 and apt_get:
        log("wrk is missing: installing Debian's package `wrk` with apt-get")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run([apt_get, "update", "-qq"], check=False, env=env, timeout=300)  # noqa: S603
        subprocess.run(  # noqa: S603
            [apt_get, "install", "-y", "-qq", "wrk"], check=False, env=env, timeout=300
        )
        found = shutil.which("wrk")
        if found:
            return found
    sys.exit(
        "bench/verify.py needs wrk, the HTTP load generator (Debian/Ubuntu package `wrk`).\n"
        "Install it with `sudo apt-get install wrk` (or `brew install wrk` on macOS) and run "
        "this script again."
    )


def postgres_answers() -> bool:
    try:
        import psycopg
    except ImportError:
        return False
    try:
        with psycopg.connect(PG_SERVER, autocommit=True):
            return True
    except psycopg.OperationalError:
        return False


def postgres_admin(sql: str, dbname: str = "postgres") -> None:
    import psycopg

    server = PG_SERVER.replace("dbname=postgres", f"dbname={dbname}")
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql)


def redis_client(url: str):
    """Return a redis-py client of `url` when it answers a PING, else None."""
    try:
        import redis
    except ImportError:
        return None
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError:
        client.close()
        return None
    return client


def clear_redis(client) -> int:
    """Delete keyportal's keys (its KEY_PREFIX) in the bench's Redis database, not the database."""
    keys = list(client.scan_iter(match=f"{REDIS_PREFIX}*", count=1000))
    if keys:
        client.delete(*keys)
    return len(keys)


def analyze(database_url: str) -> None:
    """On PostgreSQL, refresh the planner's statistics after the bulk load, as autovacuum does
    within a minute or so (before that, its default estimates pick hash joins over whole tables).
    SQLite keeps no statistics unless someone runs ANALYZE, and keyportal never does."""
    if database_url.startswith("postgres"):
        postgres_admin("VACUUM ANALYZE", dbname=database_url.rsplit("/", 1)[1])


@contextlib.contextmanager
def database(kind: str, workdir: Path):
    """Yield a DATABASE_URL for a database that exists only for this run."""
    if kind.startswith("sqlite"):
        # The temporary folder (and so the database, its -wal and -shm) is removed by the caller.
        yield f"sqlite:///{workdir / 'keyportal.sqlite3'}"
        return
    name = f"keyportal_bench_{os.getpid()}_{secrets.token_hex(3)}"  # kind: postgres*
    postgres_admin(f'CREATE DATABASE "{name}"')
    log(f"created PostgreSQL database {name}")
    try:
        yield PG_URL.format(name=name)
    finally:
        postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        log(f"dropped PostgreSQL database {name}")


def django_env(
    database_url: str,
    *,
    debug: bool,
    settings_module: str = "keyportal.settings",
    redis_url: str = "",
) -> dict[str, str]:
    """The environment of the server and of its manage.py commands; with `redis_url`, Django's
    cache (and with it the keys' rate limits) is that Redis, else the local-memory cache."""
    env = dict(os.environ)
    for name in (
        "GUNICORN_CMD_ARGS",
        "KEYPORTAL_USAGE_FLUSH_SECONDS",
        "PYTHONPATH",
        "REDIS_URL",
        "KEYPORTAL_LIMITS_CACHE",
    ):
        env.pop(name, None)  # the flush interval stays at its configured default (10 s)
    if redis_url:
        env["REDIS_URL"] = redis_url
    env.update(
        DJANGO_SETTINGS_MODULE=settings_module,
        DATABASE_URL=database_url,
        DEBUG="true" if debug else "false",
        # A revoked key's refusals count as failed attempts from 127.0.0.1; raise the limit so
        # every request after the revoke still reaches verify_token (and is not merely 429).
        # Only failures touch the limiter (apikeys/api/auth.py), so the throughput figures are
        # unaffected.
        KEYPORTAL_API_AUTH_FAILURES_PER_MINUTE="1000000",
        PYTHONUNBUFFERED="1",
    )
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 600) -> str:
    """Run `manage.py ARGS` and return its standard output; fail loudly on error."""
    done = subprocess.run(  # noqa: S603 (our own interpreter and manage.py)
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


# --------------------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    port: int
    process: subprocess.Popen
    log_path: Path

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"


@contextlib.contextmanager
def gunicorn(
    env: dict[str, str],
    workdir: Path,
    *,
    workers: int = 2,
    app: str = "keyportal.wsgi:application",
):
    port = free_port()
    empty_config = workdir / "gunicorn.conf.py"  # so no gunicorn.conf.py elsewhere is read
    empty_config.write_text("")
    log_path = workdir / "gunicorn.log"
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        app,
        "--config",
        str(empty_config),
        "--workers",
        str(workers),
        "--worker-class",
        "sync",
        "--bind",
        f"{HOST}:{port}",
        "--error-logfile",
        str(log_path),
        "--log-level",
        "warning",
    ]  # no --access-logfile: gunicorn writes no access log
    with open(workdir / "gunicorn.out", "wb") as out:
        process = subprocess.Popen(  # noqa: S603 (our own interpreter and gunicorn)
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(port, process, log_path)
    try:
        wait_until_up(server, timeout=30)
        log(f"gunicorn ({workers} sync workers) is up on {server.base}, pid {process.pid}")
        yield server
    finally:
        stop_process_group(process)
        log("gunicorn stopped")


def wait_until_up(server: Server, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited early:\n{read_tail(server.log_path)}")
        with contextlib.suppress(OSError):
            if request(server.port, "GET", "/api/v1/health")[0] == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer within {timeout:.0f} s")


def stop_process_group(process: subprocess.Popen, grace: float = 10) -> None:
    """Stop a process we started, and its children, by its own process group."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def read_tail(path: Path, size: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-size:]
    except OSError:
        return ""


def request(
    port: int, method: str, path: str, *, token: str | None = None, timeout: float = 10
) -> tuple[int, bytes]:
    """One HTTP/1.1 request to 127.0.0.1 (gunicorn's sync workers close each connection)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if method == "POST":
        headers["Content-Type"] = "application/json"
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, body=b"{}" if method == "POST" else None, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


# ------------------------------------------------------------------------------------------ wrk


@dataclass
class WrkResult:
    path: str
    requests_per_second: float
    requests: int
    non_2xx: int
    socket_errors: str

    @property
    def clean(self) -> bool:
        return self.non_2xx == 0 and self.requests > 0


def run_wrk(
    wrk: str,
    server: Server,
    path: str,
    *,
    seconds: float,
    connections: int,
    threads: int,
    token: str | None = None,
) -> WrkResult:
    command = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "5s",
    ]
    if token:
        command += ["-H", f"Authorization: Bearer {token}"]
    command.append(server.base + path)
    done = subprocess.run(  # noqa: S603 (wrk, found on PATH, against 127.0.0.1)
        command, capture_output=True, text=True, timeout=seconds + 30, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stderr or done.stdout}")
    out = done.stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:\s+(.*)", out)
    if not rps or not total:
        raise RuntimeError(f"could not read wrk's output:\n{out}")
    return WrkResult(
        path=path,
        requests_per_second=float(rps.group(1)),
        requests=int(total.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=errors.group(1).strip() if errors else "",
    )


@contextlib.contextmanager
def background_wrk(
    wrk: str, server: Server, path: str, *, seconds: float, connections: int, token: str | None
):
    """Keep wrk loading `path` while the block runs; stopped (bounded) at the end."""
    if connections <= 0:
        yield
        return
    command = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s"]
    if token:
        command += ["-H", f"Authorization: Bearer {token}"]
    command.append(server.base + path)
    process = subprocess.Popen(  # noqa: S603 (wrk, found on PATH, against 127.0.0.1)
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        yield
    finally:
        stop_process_group(process, grace=5)


# ------------------------------------------------------------------------------- revoke check


@dataclass
class Attempt:
    started: float  # time.time() when the request was about to be sent
    finished: float
    status: int  # -1: no answer (connection error or timeout)
    code: str = ""


@dataclass
class RevokeResult:
    revoke_status: int
    sent_at: float
    committed_by: float  # the revoke's response had arrived: its transaction had committed
    attempts: list[Attempt] = field(default_factory=list)

    def after_commit(self) -> list[Attempt]:
        return [a for a in self.attempts if a.started > self.committed_by]

    def before_revoke(self) -> list[Attempt]:
        return [a for a in self.attempts if a.finished < self.sent_at]

    def in_flight(self) -> list[Attempt]:
        """Requests that started while the revoke was being processed: either answer is right."""
        return [a for a in self.attempts if self.sent_at <= a.started <= self.committed_by]


def revoke_during_load(
    server: Server,
    *,
    victim_token: str,
    victim_id: int,
    admin_token: str,
    threads: int,
    before: float,
    after: float,
) -> RevokeResult:
    stop = threading.Event()
    lock = threading.Lock()
    attempts: list[Attempt] = []

    def hammer() -> None:
        mine: list[Attempt] = []
        while not stop.is_set():
            started = time.time()
            code = ""
            try:
                status, body = request(
                    server.port, "GET", "/api/v1/whoami", token=victim_token, timeout=5
                )
                if status != 200:
                    with contextlib.suppress(ValueError, KeyError, TypeError):
                        code = json.loads(body)["error"]["code"]
            except OSError:
                status = -1
            mine.append(Attempt(started, time.time(), status, code))
        with lock:
            attempts.extend(mine)

    workers = [threading.Thread(target=hammer, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    try:
        time.sleep(before)
        sent_at = time.time()
        status, body = request(
            server.port, "POST", f"/api/v1/keys/{victim_id}/revoke", token=admin_token, timeout=30
        )
        committed_by = time.time()
        if status != 200:
            raise RuntimeError(f"the revoke answered {status}: {body[:500]!r}")
        time.sleep(after)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=15)
    result = RevokeResult(status, sent_at, committed_by)
    result.attempts = sorted(attempts, key=lambda a: a.started)
    return result


# ---------------------------------------------------------------------------------- one database


@dataclass
class DatabaseResult:
    label: str
    health: list[WrkResult] = field(default_factory=list)
    whoami: list[WrkResult] = field(default_factory=list)
    # whoami with the protected keys (PROTECTED_LABELS), in the same rounds as the plain key.
    protected: dict[str, list[WrkResult]] = field(default_factory=dict)
    # Why a protected key was not measured (no Redis, a bound), by its name.
    skipped: dict[str, str] = field(default_factory=dict)
    # What Redis counted in the limited key's current window after the rounds (None: not read).
    redis_count: int | None = None
    revoke: RevokeResult | None = None
    # A bound measured with verification cut to its query (QUERY_ONLY_APP), not keyportal.
    bound: bool = False
    seed_seconds: float = 0.0
    error: str = ""

    @property
    def health_rps(self) -> float:
        return statistics.median(r.requests_per_second for r in self.health)

    @property
    def whoami_rps(self) -> float:
        return statistics.median(r.requests_per_second for r in self.whoami)

    @property
    def ratio(self) -> float:
        return self.whoami_rps / self.health_rps if self.health_rps else 0.0

    def protected_rps(self, name: str) -> float:
        return statistics.median(r.requests_per_second for r in self.protected[name])

    def protected_ratio(self, name: str) -> float:
        return self.protected_rps(name) / self.whoami_rps if self.whoami_rps else 0.0

    def protected_paired(self, name: str) -> float:
        """The median of each round's ratio to the plain key's run of the same round: less
        swayed than the ratio of medians by load that comes and goes (a shared machine)."""
        pairs = zip(self.protected[name], self.whoami, strict=False)
        return statistics.median(
            p.requests_per_second / w.requests_per_second for p, w in pairs if w.requests_per_second
        )

    @property
    def clean(self) -> bool:
        runs = [r for rows in self.protected.values() for r in rows]
        return all(r.clean for r in self.health + self.whoami + runs)


def create_key(env: dict[str, str], *, name: str, permissions: str, options=()) -> str:
    """Make an organization key with `manage.py create_api_key` (`options`: its protections,
    such as --allow-ip or --rate-limit); return its token."""
    token = manage(
        env,
        "create_api_key",
        "--organization",
        "acme",
        "--name",
        name,
        "--permissions",
        permissions,
        # The demo's key policy wants organization keys to expire within 90 days.
        "--expires-in-days",
        "30",
        *options,
        timeout=120,
    ).strip()
    if not token.startswith("sk-"):
        raise RuntimeError(f"create_api_key printed no token: {token[:80]!r}")
    return token


def bench_database(kind: str, args: argparse.Namespace, wrk: str, redis=None) -> DatabaseResult:
    """Measure one database; `redis` is a client of `--redis-url` when Redis answers (the server
    then runs with REDIS_URL, and the rate-limited key is measured), else None."""
    label = LABELS[kind]
    result = DatabaseResult(label, bound=kind.endswith(("-query-only", "-lookup-only")))
    workdir = Path(tempfile.mkdtemp(prefix=f"keyportal-bench-{kind}-"))
    app = "keyportal.wsgi:application"
    try:
        with database(kind, workdir) as url:
            env = django_env(url, debug=args.debug, redis_url=args.redis_url if redis else "")
            if kind == "postgres-prepared":
                (workdir / "bench_settings.py").write_text(PREPARED_SETTINGS)
                env = django_env(
                    url,
                    debug=args.debug,
                    settings_module="bench_settings",
                    redis_url=args.redis_url if redis else "",
                )
                env["PYTHONPATH"] = str(workdir)
            if result.bound:
                lookup = "bare_lookup" if kind.endswith("-query-only") else "keyportal_lookup"
                (workdir / "bench_query_only.py").write_text(QUERY_ONLY_APP.format(lookup=lookup))
                env["PYTHONPATH"] = str(workdir)
                app = "bench_query_only:application"
            if redis is not None:
                # Key ids start again in each fresh database: no counter of an earlier run may
                # be found under them.
                clear_redis(redis)
            log(f"{label}: migrating")
            manage(env, "migrate", "--noinput", "--verbosity", "0")
            log(f"{label}: seeding the demo data with {args.keys:,} keys")
            started = time.monotonic()
            manage(env, "seed_demo", "--keys", str(args.keys), timeout=1800)
            result.seed_seconds = time.monotonic() - started
            log(f"{label}: seeded in {result.seed_seconds:.1f} s")
            analyze(url)
            # The key wrk sends (an organization key), the key that gets revoked, and the key
            # that revokes it (api-keys:manage), each made the way an operator would.
            bench_token = create_key(env, name="bench-whoami", permissions="projects:read")
            victim_token = create_key(env, name="bench-revoked", permissions="projects:read")
            admin_token = create_key(env, name="bench-admin", permissions="api-keys:manage")
            # The keys with protections, loaded in the same rounds as the plain key.
            tokens = {"health": None, "whoami": bench_token}
            if result.bound:
                for name in PROTECTED_LABELS:
                    result.skipped[name] = "a bound: this server answers a key it has seen"
            else:
                tokens["allowlist"] = create_key(
                    env,
                    name="bench-allowlist",
                    permissions="projects:read",
                    options=[f"--allow-ip={entry}" for entry in ALLOWLIST],
                )
                if redis is not None:
                    tokens["limited"] = create_key(
                        env,
                        name="bench-limited",
                        permissions="projects:read",
                        options=[f"--rate-limit={NEVER_REACHED}"],
                    )
                else:
                    result.skipped["limited"] = f"Redis does not answer at {args.redis_url}"
            for name in PROTECTED_LABELS:
                if name in tokens:
                    result.protected[name] = []
            with gunicorn(env, workdir, workers=args.workers, app=app) as server:
                status, body = request(server.port, "GET", "/api/v1/whoami", token=victim_token)
                if status != 200:
                    raise RuntimeError(f"whoami with a fresh key answered {status}: {body[:300]!r}")
                victim_id = json.loads(body)["id"]
                key_ids = {}
                for name in result.protected:
                    status, body = request(server.port, "GET", "/api/v1/whoami", token=tokens[name])
                    if status != 200:
                        raise RuntimeError(
                            f"whoami with the {name} key answered {status}: {body!r}"
                        )
                    shown = json.loads(body)
                    key_ids[name] = shown["id"]
                    if not shown["allowed_ips" if name == "allowlist" else "rate_limits"]:
                        raise RuntimeError(f"the {name} key has no protections: {shown!r}")
                load = {"connections": args.connections, "threads": args.threads}
                log(f"{label}: warming up ({args.warmup:g} s per endpoint)")
                for series, token in tokens.items():
                    path = "/api/v1/health" if series == "health" else "/api/v1/whoami"
                    run_wrk(wrk, server, path, seconds=args.warmup, token=token, **load)
                for number in range(1, args.rounds + 1):
                    # Each round loads every series in turn, the order reversed every other
                    # round, so drift does not favour any of them.
                    order = list(tokens) if number % 2 else list(reversed(tokens))
                    for series in order:
                        path = "/api/v1/health" if series == "health" else "/api/v1/whoami"
                        measured = run_wrk(
                            wrk,
                            server,
                            path,
                            seconds=args.duration,
                            token=tokens[series],
                            **load,
                        )
                        if series in result.protected:
                            result.protected[series].append(measured)
                        else:
                            getattr(result, series).append(measured)
                        note = "" if measured.clean else f"  ({measured.non_2xx} non-2xx!)"
                        if measured.socket_errors:
                            note += f"  (socket errors: {measured.socket_errors})"
                        log(
                            f"{label}: round {number} {series:<9} "
                            f"{measured.requests_per_second:9.1f} req/s{note}"
                        )
                if "limited" in key_ids:
                    # That the limited key was counted in Redis (apikeys.limits' key for its
                    # window under Django's prefix and version), not in a worker's memory.
                    window = f"{REDIS_PREFIX}1:kp:rl:{key_ids['limited']}:minute"
                    result.redis_count = int(redis.get(window) or 0)
                if result.bound:
                    log(f"{label}: no revoke check (this server answers a key it has seen)")
                else:
                    log(
                        f"{label}: revoking a key while {args.revoke_threads} threads use it "
                        f"({args.revoke_before:g} s before, {args.revoke_after:g} s after)"
                    )
                    span = args.revoke_before + args.revoke_after + 5
                    with background_wrk(
                        wrk,
                        server,
                        "/api/v1/whoami",
                        seconds=span,
                        connections=args.revoke_load_connections,
                        token=bench_token,
                    ):
                        result.revoke = revoke_during_load(
                            server,
                            victim_token=victim_token,
                            victim_id=victim_id,
                            admin_token=admin_token,
                            threads=args.revoke_threads,
                            before=args.revoke_before,
                            after=args.revoke_after,
                        )
                server_log = read_tail(server.log_path)
                if "Traceback" in server_log:
                    log(f"{label}: gunicorn logged errors:\n{server_log}")
    except Exception as failure:  # report it, then go on with the next database
        result.error = f"{type(failure).__name__}: {failure}"
        log(f"{label}: FAILED: {result.error}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if redis is not None:
            with contextlib.suppress(Exception):
                clear_redis(redis)
    return result


# ------------------------------------------------------------------------------------- report


def report(results: list[DatabaseResult], args: argparse.Namespace) -> bool:
    print()
    print(
        f"keyportal verification benchmark: {args.keys:,} keys, gunicorn {args.workers} sync "
        f"workers, wrk -t{args.threads} -c{args.connections}, {args.rounds} rounds x "
        f"{args.duration:g} s per endpoint, DEBUG={'on' if args.debug else 'off'}"
    )
    print(
        f"machine: {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )
    print()
    ok = True
    header = (
        f"{'database':<22} {'health req/s':>12} {'whoami req/s':>12} {'whoami/health':>13} "
        f"{'target':>6}  {'accepted after revoke':>21}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        if r.error or not r.health or not r.whoami:
            print(f"{r.label:<22} FAILED: {r.error or 'no measurement'}")
            ok = False
            continue
        verdict = "ok" if r.ratio >= TARGET_RATIO else "BELOW"
        if r.bound:
            verdict = "bound"
        accepted = "n/a"
        if r.revoke is not None:
            after = r.revoke.after_commit()
            late = sum(1 for a in after if a.status == 200)
            accepted = f"{late} of {len(after)}"
            ok &= late == 0
        ok &= (r.bound or r.ratio >= TARGET_RATIO) and r.clean
        print(
            f"{r.label:<22} {r.health_rps:12.1f} {r.whoami_rps:12.1f} {r.ratio:13.2f} "
            f"{TARGET_RATIO:6.2f}  {accepted:>21}   {verdict}"
            + ("" if r.clean else "  (some responses were not 2xx: figures invalid)")
        )
    ok &= report_protected(results)
    print()
    for r in results:
        if r.error or not r.health:
            continue
        rounds_h = ", ".join(f"{x.requests_per_second:.0f}" for x in r.health)
        rounds_w = ", ".join(f"{x.requests_per_second:.0f}" for x in r.whoami)
        print(f"{r.label}: health rounds [{rounds_h}], whoami rounds [{rounds_w}] req/s")
        for name, rows in r.protected.items():
            rounds_p = ", ".join(f"{x.requests_per_second:.0f}" for x in rows)
            print(f"  {PROTECTED_LABELS[name]} rounds [{rounds_p}] req/s")
        if r.redis_count is not None:
            print(f"  Redis counted {r.redis_count:,} requests in the limited key's current window")
        if r.revoke is None:
            continue
        rv = r.revoke
        before = rv.before_revoke()
        after = rv.after_commit()
        flight = rv.in_flight()

        def tally(items: list[Attempt]) -> str:
            counts: dict[str, int] = {}
            for a in items:
                key = str(a.status) + (f" {a.code}" if a.code else "")
                counts[key] = counts.get(key, 0) + 1
            return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "none"

        print(
            f"  revoke: answered {rv.revoke_status} in {1000 * (rv.committed_by - rv.sent_at):.0f}"
            f" ms; before it [{tally(before)}]; started while it ran [{tally(flight)}]; started"
            f" after it committed [{tally(after)}]"
        )
    print()
    if any(r.label == LABELS["postgres-prepared"] for r in results):
        print(
            "PostgreSQL* = PostgreSQL with server_side_binding, prepare_threshold 5 and "
            "CONN_HEALTH_CHECKS off (not keyportal's defaults)."
        )
    if any(r.bound for r in results):
        print(
            "query only = not keyportal: one indexed SELECT of a key's id by digest runs on every "
            "request, its row is discarded, and the key verified on first use is answered again "
            "(no joins, checks or model): a bound for any verification that asks the database "
            "on every request. lookup only = the same with keyportal's whole lookup query."
        )
    print(
        "accepted after revoke = requests with the revoked key that got 200 although they "
        "started after the revoke's response had arrived (its transaction had committed by then)."
    )
    return ok


def report_protected(results: list[DatabaseResult]) -> bool:
    """Print each protected key's median whoami req/s and its ratio to the plain key's, measured
    in the same rounds on the same server; return whether every target was met."""
    measured = [r for r in results if not r.error and r.whoami and (r.protected or r.skipped)]
    if not measured:
        return True
    print()
    header = (
        f"{'database':<22} {'whoami with key':<19} {'req/s':>9} {'/ plain key':>11} "
        f"{'target':>6}  {'per round':>9}"
    )
    print(header)
    print("-" * len(header))
    ok = True
    for r in measured:
        print(f"{r.label:<22} {'plain':<19} {r.whoami_rps:9.1f} {1:11.3f}")
        for name, label in PROTECTED_LABELS.items():
            if name in r.skipped:
                print(f"{r.label:<22} {label:<19} {'skipped':>9}  ({r.skipped[name]})")
                continue
            if not r.protected.get(name):
                continue
            ratio = r.protected_ratio(name)
            target = PROTECTED_TARGETS[name]
            clean = all(x.clean for x in r.protected[name])
            verdict = "ok" if ratio >= target else "BELOW"
            ok &= ratio >= target and clean
            print(
                f"{r.label:<22} {label:<19} {r.protected_rps(name):9.1f} {ratio:11.3f} "
                f"{target:6.2f}  {r.protected_paired(name):9.3f}   {verdict}"
                + ("" if clean else "  (some responses were not 2xx: figures invalid)")
            )
    print(
        "/ plain key = median req/s over the plain key's (what the target applies to); "
        "per round = the median of each round's own ratio."
    )
    print(
        f"IP allowlist (10) = {len(ALLOWLIST)} entries, 127.0.0.1 in the last "
        f"({ALLOWLIST[-1]}); rate limit (Redis) = {NEVER_REACHED}, never reached, counted in "
        "Redis (REDIS_URL)."
    )
    return ok


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark /api/v1/whoami against /api/v1/health on a real gunicorn.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--keys", type=int, default=100_000, help="keys seed_demo inserts")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds per endpoint")
    parser.add_argument("--duration", type=float, default=10, help="seconds per wrk run")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of warm-up per endpoint")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument(
        "--databases",
        default="sqlite,postgres",
        help="comma-separated: sqlite, postgres, postgres-prepared (PostgreSQL with prepared "
        "statements and no per-request health check, settings keyportal does not use by "
        "default), sqlite-query-only, postgres-query-only (a bound: verification cut to a bare "
        "query, see QUERY_ONLY_APP), sqlite-lookup-only, postgres-lookup-only (the same with "
        "keyportal's lookup query); PostgreSQL is skipped when 127.0.0.1:5432 does not "
        "answer, unless only PostgreSQL was asked for",
    )
    parser.add_argument("--revoke-threads", type=int, default=4, help="client threads")
    parser.add_argument("--revoke-before", type=float, default=2, help="seconds before revoke")
    parser.add_argument("--revoke-after", type=float, default=2, help="seconds after revoke")
    parser.add_argument(
        "--revoke-load-connections",
        type=int,
        default=4,
        help="wrk connections loading whoami (another key) during the revoke check; 0: none",
    )
    parser.add_argument(
        "--redis-url",
        default=REDIS_URL,
        help="Redis for the server's cache (REDIS_URL) when it answers: a database the bench "
        "may delete keyportal's keys in (keyportal:*); without it the rate-limited key is not "
        "measured",
    )
    parser.add_argument(
        "--debug", action="store_true", help="run the server with DEBUG on (default: off)"
    )
    args = parser.parse_args()
    args.databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    unknown = set(args.databases) - set(LABELS)
    if unknown or not args.databases:
        parser.error(f"unknown database(s): {', '.join(sorted(unknown)) or '(none)'}")
    if args.keys < 0 or args.rounds < 1 or args.duration < 1:
        parser.error("--keys must be >= 0, --rounds >= 1 and --duration >= 1")
    return args


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main() -> int:
    args = parse_args()
    # SIGTERM (a CI timeout, kill PID) unwinds like Ctrl-C, so every `finally` cleans up.
    signal.signal(signal.SIGTERM, _interrupt)
    wrk = ensure_wrk()
    kinds = list(args.databases)
    if any(k.startswith("postgres") for k in kinds) and not postgres_answers():
        if not any(k.startswith("sqlite") for k in kinds):
            sys.exit("PostgreSQL does not answer on 127.0.0.1:5432 (user postgres).")
        log("PostgreSQL does not answer on 127.0.0.1:5432: SQLite only")
        kinds = [k for k in kinds if k.startswith("sqlite")]
    redis = redis_client(args.redis_url)
    if redis is None:
        log(
            f"Redis does not answer at {args.redis_url}: the server runs without REDIS_URL and "
            "the rate-limited key is not measured"
        )
    else:
        log(f"Redis answers at {args.redis_url}: the server runs with REDIS_URL set")
    try:
        results = [bench_database(kind, args, wrk, redis) for kind in kinds]
    finally:
        if redis is not None:
            redis.close()
    return 0 if report(results, args) else 1


if __name__ == "__main__":
    sys.exit(main())
