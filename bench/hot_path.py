#!/usr/bin/env python3
"""Where a whoami request's time goes, in-process, without a server or a load generator.

Makes a SQLite database in a temporary folder (or uses DATABASE_URL when given, which must be an
empty database it may migrate), seeds the demo data with `--keys` keys, mints one organization
key, then calls keyportal's WSGI application directly: `GET /api/v1/health` and
`GET /api/v1/whoami` alternately, `--requests` times each, and prints the microseconds per
request of each and, for whoami, the time spent inside the parts of verification. Figures are
wall time on one core: smaller and steadier than a loaded server's, useful for comparing
changes, not for the 0.80 target (bench/verify.py measures that).

    .venv/bin/python bench/hot_path.py
    .venv/bin/python bench/hot_path.py --keys 100000 --requests 20000
"""

from __future__ import annotations

import argparse
import importlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def manage(*args: str) -> str:
    done = subprocess.run(  # noqa: S603 (our own interpreter and manage.py)
        [sys.executable, "manage.py", *args], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=10_000, help="keys seed_demo inserts")
    parser.add_argument("--requests", type=int, default=5_000, help="requests per round")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="keyportal-hot-path-"))
    try:
        os.environ.setdefault("DATABASE_URL", f"sqlite:///{folder / 'db.sqlite3'}")
        os.environ.update(DJANGO_SETTINGS_MODULE="keyportal.settings", DEBUG="false")
        manage("migrate", "--noinput", "--verbosity", "0")
        manage("seed_demo", "--keys", str(args.keys))
        token = manage(
            "create_api_key", "--organization", "acme", "--name", "hot-path",
            "--permissions", "projects:read", "--expires-in-days", "30",
        ).strip()  # fmt: skip
        measure(token, args.requests)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def measure(token: str, count: int) -> None:
    sys.path.insert(0, str(ROOT))
    # No collectstatic here, and the API serves no static file: whitenoise's warning is noise.
    warnings.filterwarnings("ignore", message="No directory at")
    from keyportal.wsgi import application  # sets Django up, so it comes first

    auth = importlib.import_module("apikeys.api.auth")
    verification = importlib.import_module("apikeys.verification")

    verify, lookup, query = (
        "verify_token (all of verification)",
        "  _lookup (the query, and the key built from its row)",
        "    _execute (the query)",
    )
    spent: dict[str, float] = dict.fromkeys((verify, lookup, query), 0.0)

    def timed(module, name: str, label: str) -> None:
        inner = getattr(module, name)

        def wrapper(*a, **kw):
            started = time.perf_counter()
            try:
                return inner(*a, **kw)
            finally:
                spent[label] = spent.get(label, 0.0) + time.perf_counter() - started

        setattr(module, name, wrapper)

    timed(auth, "verify_token", verify)
    timed(verification, "_lookup", lookup)
    timed(verification, "_execute", query)

    def call(path: str, bearer: str | None) -> None:
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1",
            "wsgi.input": io.BytesIO(b""),
            "wsgi.url_scheme": "http",
        }
        if bearer:
            environ["HTTP_AUTHORIZATION"] = f"Bearer {bearer}"
        statuses = []
        b"".join(application(environ, lambda status, headers, *_: statuses.append(status)))
        if not statuses[0].startswith("200"):
            raise SystemExit(f"{path} answered {statuses[0]}")

    for _ in range(500):  # warm up: imports, the compiled lookup, the connection
        call("/api/v1/health", None)
        call("/api/v1/whoami", token)
    for round_number in (1, 2):
        spent.update(dict.fromkeys(spent, 0.0))
        results = {}
        for path, bearer in (("/api/v1/health", None), ("/api/v1/whoami", token)):
            started = time.perf_counter()
            for _ in range(count):
                call(path, bearer)
            results[path] = (time.perf_counter() - started) / count * 1e6
        line = ", ".join(f"{path} {us:.0f} µs" for path, us in results.items())
        print(f"round {round_number}: {line}")
        for label, seconds in spent.items():
            print(f"  {label:<54} {seconds / count * 1e6:6.1f} µs per whoami")


if __name__ == "__main__":
    main()
