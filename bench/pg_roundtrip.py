#!/usr/bin/env python3
"""What one PostgreSQL round trip costs this machine, for reading bench/verify.py's figures.

Runs `SELECT 1` and a query with two text parameters (both prepared, as keyportal's key lookup
is; no table is read) many times on one connection and prints, per query, the
wall time and the CPU time the client process spent (psycopg and the system calls); the rest of
the wall time is the server's work and the scheduler's. Nothing is created or changed.

    .venv/bin/python bench/pg_roundtrip.py                  # 127.0.0.1:5432, user postgres
    .venv/bin/python bench/pg_roundtrip.py --dsn "host=db user=keyportal dbname=keyportal"
"""

from __future__ import annotations

import argparse
import time

import psycopg

QUERIES = {
    "SELECT 1": ("SELECT 1", None),
    "SELECT with a parameter": ("SELECT %s::text = %s::text", ("a" * 64, "a" * 64)),
}


def measure(conn: psycopg.Connection, sql: str, params, count: int) -> tuple[float, float]:
    """Return (wall µs, client CPU µs) per execution, after a warm-up that prepares it."""
    with psycopg.Cursor(conn) as cursor:
        for _ in range(20):
            cursor.execute(sql, params, prepare=True)
            cursor.fetchone()
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(count):
            cursor.execute(sql, params, prepare=True)
            cursor.fetchone()
        return (
            (time.perf_counter() - wall) / count * 1e6,
            (time.process_time() - cpu) / count * 1e6,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default="host=127.0.0.1 port=5432 user=postgres dbname=postgres")
    parser.add_argument("--count", type=int, default=20_000, help="executions per query")
    args = parser.parse_args()
    with psycopg.connect(args.dsn, autocommit=True) as conn:
        print(f"{'query':<26} {'wall µs':>8} {'client CPU µs':>14}")
        for label, (sql, params) in QUERIES.items():
            wall, cpu = measure(conn, sql, params, args.count)
            print(f"{label:<26} {wall:8.1f} {cpu:14.1f}")


if __name__ == "__main__":
    main()
