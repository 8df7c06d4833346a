#!/usr/bin/env python3
"""Benchmark the keys table page with 100 and with 100,000 keys (issue 5, "Scale").

For each size it makes a fresh database (SQLite in a temporary folder, or, with
`--database postgres`, a PostgreSQL database it creates on 127.0.0.1:5432 and drops), migrates,
runs `seed_demo --keys N`, then requests the owner's Organization > API keys page (the first page,
and a filtered one) in-process through Django's test client, DEBUG off, and prints the median
time of each and the ratio of the 100,000-key median to the 100-key one (target: 1.3 or less).

    .venv/bin/python bench/list_page.py                      # SQLite, 100 and 100,000 keys
    .venv/bin/python bench/list_page.py --database postgres  # the same on PostgreSQL
    .venv/bin/python bench/list_page.py --sizes 100,10000 --requests 20
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_RATIO = 1.3
# Both pages show 50 keys at either size (100 keys hold 75 personal ones), so the ratio
# measures what the number of keys costs, not a shorter page.
PAGES = {
    "first page": {},
    "filtered": {"q": "bulk", "status": "active", "kind": "user"},
}


def measure(requests: int) -> dict[str, float]:
    """Run inside a prepared database: the median milliseconds of each page."""
    import django

    django.setup()
    from django.test import Client

    from accounts.models import User

    client = Client(HTTP_HOST="127.0.0.1")  # a host ALLOWED_HOSTS has, DEBUG being off
    client.force_login(User.objects.get(email="owner@acme.test"))
    medians = {}
    for label, params in PAGES.items():
        for _ in range(5):  # warm up: templates, connection, caches of the database
            assert client.get("/o/acme/api-keys/", params).status_code == 200
        times = []
        for _ in range(requests):
            start = time.perf_counter()
            response = client.get("/o/acme/api-keys/", params)
            times.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200
        medians[label] = statistics.median(times)
    return medians


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run(  # noqa: S603 (our own interpreter and manage.py)
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=900,
    )


def postgres(sql: str) -> None:
    import psycopg

    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as c:
        c.execute(sql)


def run_size(size: int, args: argparse.Namespace, workdir: Path) -> dict[str, float]:
    env = dict(os.environ, DEBUG="false", DJANGO_SETTINGS_MODULE="keyportal.settings")
    name = f"keyportal_list_bench_{os.getpid()}_{size}"
    if args.database == "postgres":
        postgres(f'CREATE DATABASE "{name}"')
        env["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{name}"
    else:
        env["DATABASE_URL"] = f"sqlite:///{workdir / f'{name}.sqlite3'}"
    try:
        started = time.perf_counter()
        manage(env, "migrate", "--noinput")
        manage(env, "seed_demo", "--keys", str(size))
        print(f"  {size:,} keys seeded in {time.perf_counter() - started:.1f} s", flush=True)
        out = subprocess.run(  # noqa: S603 (this script, measuring in the prepared database)
            [sys.executable, __file__, "--measure", "--requests", str(args.requests)],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
            timeout=900,
        )
        return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        if args.database == "postgres":
            postgres(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--sizes", default="100,100000", help="two key counts, small first")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per page")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.measure:
        print(json.dumps(measure(args.requests)))
        return 0
    small, large = (int(s) for s in args.sizes.split(","))
    print(f"keys table page, {args.database}, median of {args.requests} requests", flush=True)
    with tempfile.TemporaryDirectory(prefix="keyportal-list-") as tmp:
        results = {size: run_size(size, args, Path(tmp)) for size in (small, large)}
    ok = True
    print(f"\n{'page':12} {small:>10,} keys {large:>10,} keys   ratio  target")
    for label in PAGES:
        a, b = results[small][label], results[large][label]
        ratio = b / a
        ok &= ratio <= TARGET_RATIO
        verdict = "ok" if ratio <= TARGET_RATIO else "ABOVE"
        print(f"{label:12} {a:>10.1f} ms   {b:>10.1f} ms   {ratio:5.2f}  {TARGET_RATIO}  {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
