"""Create or drop a PostgreSQL database for CI: `ci_postgres.py check|create|drop NAME`."""

from __future__ import annotations

import sys

import psycopg

SERVER = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"


def main() -> int:
    action = sys.argv[1]
    try:
        conn = psycopg.connect(SERVER, autocommit=True)
    except psycopg.OperationalError:
        return 1
    with conn:
        if action == "create":
            conn.execute(f'DROP DATABASE IF EXISTS "{sys.argv[2]}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{sys.argv[2]}"')
        elif action == "drop":
            conn.execute(f'DROP DATABASE IF EXISTS "{sys.argv[2]}" WITH (FORCE)')
            conn.execute(f'DROP DATABASE IF EXISTS "test_{sys.argv[2]}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    sys.exit(main())
