"""`keyportal secrets list|get|set` against the live server."""

from __future__ import annotations

import json

import httpx
import pytest

from accounts.access import Actor
from accounts.models import AuditEvent, Origin
from projects.models import SecretVersion
from projects.secrets import secret_decrypt, secret_set, secret_version_get
from tests.cli.conftest import assert_never_shown, org_token
from tests.projects.secret_helpers import environment_in

pytestmark = pytest.mark.django_db(transaction=True)

ALL_SECRETS = ["secrets:read", "secrets:decrypt", "secrets:write"]


@pytest.fixture
def environment(org):
    """Return an environment of Acme holding API_TOKEN (version 2) and DB_URL."""
    environment = environment_in(org)
    actor = Actor(user=org.owner)
    secret_set(actor=actor, environment=environment, name="API_TOKEN", value="first")
    secret_set(actor=actor, environment=environment, name="API_TOKEN", value="tok-123 \n")
    secret_set(actor=actor, environment=environment, name="DB_URL", value="postgres://x")
    return environment


def value_of(environment, name: str) -> str:
    return secret_decrypt(version=secret_version_get(environment=environment, name=name))


def test_get_prints_the_value_alone(keyportal, org, environment):
    """The value, exactly, and nothing else on stdout: ready for $(...) or > file."""
    token = org_token(org, ALL_SECRETS)
    result = keyportal("secrets", "get", "API_TOKEN", "-e", str(environment.pk),
                       env={"KEYPORTAL_API_KEY": token})  # fmt: skip
    assert result.exit_code == 0
    assert result.stdout == "tok-123 \n"
    assert result.stderr == ""
    older = keyportal("secrets", "get", "API_TOKEN", "--environment", str(environment.pk),
                      "--version", "1", env={"KEYPORTAL_API_KEY": token})  # fmt: skip
    assert older.stdout == "first"
    assert_never_shown(result, token)


def test_get_as_json(keyportal, org, environment):
    """--json gives the name, version and value as the server sends them."""
    token = org_token(org, ALL_SECRETS)
    result = keyportal("--json", "secrets", "get", "DB_URL", "-e", str(environment.pk),
                       env={"KEYPORTAL_API_KEY": token})  # fmt: skip
    assert json.loads(result.stdout) == {"name": "DB_URL", "version": 1, "value": "postgres://x"}


def test_a_missing_secret_is_exit_5_naming_it(keyportal, org, environment):
    """An unknown secret name is a 404 naming the secret and the environment."""
    result = keyportal("secrets", "get", "NOPE", "-e", str(environment.pk),
                       env={"KEYPORTAL_API_KEY": org_token(org, ALL_SECRETS)})  # fmt: skip
    assert result.exit_code == 5
    assert f"Secret NOPE in environment {environment.pk} was not found" in result.stderr


def test_list_shows_names_and_versions_never_values(keyportal, org, environment):
    """The table lists each secret with its version; no value appears."""
    token = org_token(org, ["secrets:read"])
    result = keyportal("secrets", "list", "-e", str(environment.pk),
                       env={"KEYPORTAL_API_KEY": token})  # fmt: skip
    assert result.exit_code == 0
    rows = [line.split()[:2] for line in result.stdout.splitlines()]
    assert rows == [["NAME", "VERSION"], ["API_TOKEN", "2"], ["DB_URL", "1"]]
    assert "tok-123" not in result.stdout
    assert "postgres" not in result.stdout
    listed = json.loads(keyportal("secrets", "list", "-e", str(environment.pk), "--json",
                                  env={"KEYPORTAL_API_KEY": token}).stdout)  # fmt: skip
    assert [(s["name"], s["version"]) for s in listed] == [("API_TOKEN", 2), ("DB_URL", 1)]


def test_an_empty_environment_says_so(keyportal, org):
    """With no secret, the list says there is none."""
    environment = environment_in(org, project="Empty")
    result = keyportal("secrets", "list", "-e", str(environment.pk),
                       env={"KEYPORTAL_API_KEY": org_token(org, ["secrets:read"])})  # fmt: skip
    assert result.stdout == f"No secret in environment {environment.pk}.\n"


def test_set_with_value_creates_then_updates(keyportal, org, environment):
    """--value creates a secret (version 1), then a new version each time."""
    token = org_token(org, ALL_SECRETS)
    first = keyportal("secrets", "set", "NEW_ONE", "-e", str(environment.pk), "--value", "a",
                      env={"KEYPORTAL_API_KEY": token})  # fmt: skip
    assert first.exit_code == 0
    assert first.stdout == f"Created NEW_ONE in environment {environment.pk}: version 1.\n"
    again = keyportal("secrets", "set", "NEW_ONE", "-e", str(environment.pk), "--value", "b",
                      env={"KEYPORTAL_API_KEY": token})  # fmt: skip
    assert again.stdout == f"Set NEW_ONE in environment {environment.pk}: version 2.\n"
    assert value_of(environment, "NEW_ONE") == "b"


def test_set_from_stdin_drops_one_trailing_newline(keyportal, org, environment):
    """--from-stdin reads the value; the newline `echo` adds is not part of it."""
    token = org_token(org, ALL_SECRETS)
    result = keyportal("secrets", "set", "DB_URL", "-e", str(environment.pk), "--from-stdin",
                       input="postgres://new\n", env={"KEYPORTAL_API_KEY": token})  # fmt: skip
    assert result.exit_code == 0
    assert value_of(environment, "DB_URL") == "postgres://new"


def test_set_without_a_value_off_a_terminal_is_a_usage_error(keyportal, org, environment):
    """Neither --value nor --from-stdin, and no terminal to ask on: exit 2."""
    result = keyportal("secrets", "set", "DB_URL", "-e", str(environment.pk),
                       env={"KEYPORTAL_API_KEY": org_token(org, ALL_SECRETS)})  # fmt: skip
    assert result.exit_code == 2
    assert "--value or --from-stdin" in result.stderr


def test_set_without_the_permission_names_it(keyportal, org, environment):
    """A read-only key is told it lacks secrets:write; the value is unchanged."""
    result = keyportal("secrets", "set", "DB_URL", "-e", str(environment.pk), "--value", "x",
                       env={"KEYPORTAL_API_KEY": org_token(org, ["secrets:read"])})  # fmt: skip
    assert result.exit_code == 4
    assert "lacks the permission secrets:write" in result.stderr
    assert value_of(environment, "DB_URL") == "postgres://x"


def test_environments_lists_ids_with_their_places(keyportal, org, other_org, environment):
    """`keyportal environments` gives the ids --environment needs, never another tenant's."""
    environment_in(other_org, project="Globex Project")
    token = org_token(org, ["environments:read", "targets:read", "projects:read"])
    result = keyportal("environments", env={"KEYPORTAL_API_KEY": token})
    assert result.exit_code == 0
    assert [line.split() for line in result.stdout.splitlines()] == [
        ["ID", "PROJECT", "TARGET", "ENVIRONMENT"],
        [str(environment.pk), "Payments", "web", "production"],
    ]
    narrow = keyportal(
        "environments", env={"KEYPORTAL_API_KEY": org_token(org, ["environments:read"])}
    )
    assert narrow.stdout.splitlines()[1].split() == [
        str(environment.pk), "-", "target", str(environment.target_id), "production"
    ]  # fmt: skip


def test_set_is_recorded_with_origin_cli(keyportal, org, environment, live_server):
    """The CLI names itself in its User-Agent: the secret's history and the audit log say CLI.
    The same call from any other client stays API."""
    token = org_token(org, ALL_SECRETS, name="laptop")
    result = keyportal("secrets", "set", "DB_URL", "-e", str(environment.pk), "--value", "cli",
                       env={"KEYPORTAL_API_KEY": token})  # fmt: skip
    assert result.exit_code == 0, result.output
    latest = SecretVersion.objects.filter(secret__name="DB_URL").first()
    assert (latest.version, latest.origin) == (2, Origin.CLI)
    assert latest.actor_label.startswith("laptop (sk-org-...")
    assert AuditEvent.objects.filter(action="secret.set").latest("pk").origin == Origin.CLI

    response = httpx.put(
        f"{live_server.url}/api/v1/environments/{environment.pk}/secrets/DB_URL",
        json={"value": "curl"},
        headers={"Authorization": f"Bearer {token}", "User-Agent": "curl/8.5.0"},
    )
    assert response.status_code == 200, response.text
    latest = SecretVersion.objects.filter(secret__name="DB_URL").first()
    assert (latest.version, latest.origin) == (3, Origin.API)
