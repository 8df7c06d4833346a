"""`keyportal-server`: manage.py for an installed keyportal, without a checkout.

    keyportal-server migrate
    keyportal-server collectstatic --noinput
    keyportal-server db_worker --no-reload
    python -m keyportal check --deploy

It runs Django's management commands with keyportal's settings (DJANGO_SETTINGS_MODULE defaults
to keyportal.settings), like manage.py in a checkout. An installed package keeps its files in the
current directory, never in site-packages: the SQLite database and uploaded bundles under
./data (KEYPORTAL_DATA_DIR), collectstatic's output in ./staticfiles (KEYPORTAL_STATIC_ROOT).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Commands that only print, and so should not create the data folder.
_READ_ONLY = {"help", "--help", "-h", "version", "--version"}


def _make_sqlite_folder() -> None:
    """Create the folder of the default SQLite database, so `migrate` works in an empty folder."""
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    try:
        database = settings.DATABASES["default"]
    except ImproperlyConfigured:
        return  # the command itself reports it
    if database["ENGINE"] == "django.db.backends.sqlite3" and str(database["NAME"]) != ":memory:":
        Path(database["NAME"]).parent.mkdir(parents=True, exist_ok=True)


def main(argv: list[str] | None = None, prog: str = "keyportal-server") -> None:
    """Run one management command: `keyportal-server COMMAND [OPTIONS]`."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "keyportal.settings")
    from django.core.management import execute_from_command_line

    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] not in _READ_ONLY:
        _make_sqlite_folder()
    execute_from_command_line([prog, *args])
