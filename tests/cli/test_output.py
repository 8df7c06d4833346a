"""What the CLI prints: tables, JSON, and never the key in use, whatever the command."""

from __future__ import annotations

import json

import pytest

from accounts.access import Actor
from keyportal_cli import __version__
from keyportal_cli.errors import preview, scrub
from keyportal_cli.output import table, when
from projects.secrets import secret_set
from tests.cli.conftest import assert_never_shown, org_token, personal_key, store
from tests.projects.secret_helpers import environment_in

pytestmark = pytest.mark.django_db(transaction=True)


def test_tables_are_aligned(capsys):
    """Columns line up under upper-case headers; a newline in a value stays on its row."""
    rows = [{"id": 1, "name": "short"}, {"id": 22, "name": "a much\nlonger name"}]
    table(rows, [("id", lambda r: r["id"]), ("name", lambda r: r["name"])], empty="none")
    assert capsys.readouterr().out.splitlines() == [
        "ID  NAME",
        "1   short",
        "22  a much longer name",
    ]


def test_timestamps_read_in_utc():
    """Server timestamps are shown to the minute, in UTC."""
    assert when("2026-05-01T16:03:59+02:00") == "2026-05-01 14:03 UTC"
    assert when(None) == "-"


def test_previews_never_hold_the_secret_part():
    """A preview is the prefix, "..." and 4 characters; short strings show no tail."""
    token = "sk-user-" + "A" * 30 + "abcd" + "xyzw"
    assert preview(token) == "sk-user-...xyzw"
    assert preview("sk-user-short") == "sk-user-..."
    assert scrub(f"bad header {token}!") == "bad header sk-user-...xyzw!"


def test_version(keyportal):
    """--version prints the installed version."""
    assert keyportal("--version").stdout == f"keyportal, version {__version__}\n"


def test_no_command_prints_the_key_in_use(keyportal, org, live_server):
    """Every command but keys create/rotate keeps the key in use out of its output."""
    environment = environment_in(org)
    secret_set(actor=Actor(user=org.owner), environment=environment, name="A", value="1")
    token = org_token(
        org,
        ["api-keys:manage", "apps:read", "secrets:read", "secrets:decrypt", "projects:read"],
    )
    _key, stored = personal_key(org, name="stored")
    store(live_server.url, stored)
    env = {"KEYPORTAL_API_KEY": token}
    runs = [
        keyportal(*args, env=env)
        for args in (
            ["whoami"],
            ["--json", "whoami"],
            ["app", "list"],
            ["keys", "list"],
            ["--json", "keys", "list"],
            ["secrets", "list", "-e", str(environment.pk)],
            ["secrets", "get", "A", "-e", str(environment.pk)],
            ["secrets", "get", "MISSING", "-e", str(environment.pk)],
            ["keys", "revoke", "987654", "--yes"],
            ["--help"],
        )
    ]
    for result in runs:
        assert result.exit_code in (0, 5), result.output
        assert_never_shown(result, token, stored)


def test_json_output_parses(keyportal, org):
    """--json, before or after the command, prints the server's JSON."""
    token = org_token(org, ["projects:read"], name="json")
    before = json.loads(keyportal("--json", "whoami", env={"KEYPORTAL_API_KEY": token}).stdout)
    after = json.loads(keyportal("whoami", "--json", env={"KEYPORTAL_API_KEY": token}).stdout)
    assert before == after
    assert before["name"] == "json"
    assert before["organization"]["slug"] == "acme"
