"""`keyportal keys list|create|rotate|revoke`: only create and rotate ever print a token."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from apikeys.models import ApiKey
from apikeys.permissions import READ_ONLY
from keyportal_cli import credentials
from keyportal_cli.commands.keys import READ_ONLY as CLI_READ_ONLY
from keyportal_cli.tokens import has_token_format
from tests.cli.conftest import assert_never_shown, key_of, org_token, personal_key, store

pytestmark = pytest.mark.django_db(transaction=True)

MANAGE = ["api-keys:manage", *sorted(READ_ONLY)]
SHOWN_ONCE = "This is the only time the key is shown: store it now, it will not be shown again."


def test_the_read_only_preset_matches_the_consoles():
    """The CLI's read-only preset is the console's."""
    assert set(CLI_READ_ONLY) == READ_ONLY


def test_list_shows_keys_without_tokens(keyportal, org):
    """The table lists the keys the key in use may act on, by preview; --json parses; no token
    appears. An organization key never sees a personal key (DESIGN rule 2)."""
    _key, personal = personal_key(org, name="laptop")
    token = org_token(org, MANAGE, name="ci")
    org_token(org, MANAGE, name="deploy")
    result = keyportal("keys", "list", env={"KEYPORTAL_API_KEY": token})
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ID", "NAME", "KIND", "OWNER", "PREVIEW", "STATE", "EXPIRES",
                                "LAST", "USED"]  # fmt: skip
    assert any(line.split()[1] == "deploy" for line in lines[1:])
    assert f"sk-org-...{token[-4:]}" in result.stdout
    listed = json.loads(
        keyportal("--json", "keys", "list", env={"KEYPORTAL_API_KEY": token}).stdout
    )
    assert {k["name"] for k in listed} == {"deploy", "ci"}
    assert_never_shown(result, token, personal)


def test_create_prints_the_new_token_alone_once(keyportal, org):
    """The new token alone on stdout; what it is and that it is shown once on stderr."""
    token = org_token(org, MANAGE)
    result = keyportal(
        "keys", "create", "--name", "deploy", "--permission", "projects:read",
        "--permission", "secrets:read", "--expires-at", "2099-01-31",
        env={"KEYPORTAL_API_KEY": token},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    created = result.stdout.strip()
    assert has_token_format(created)
    assert result.stdout == f"{created}\n"
    key = key_of(created)
    assert key.name == "deploy"
    assert sorted(key.permissions) == ["projects:read", "secrets:read"]
    assert key.expires_at.isoformat().startswith("2099-01-31T23:59:59")
    assert "Created organization key" in result.stderr
    assert SHOWN_ONCE in result.stderr
    assert_never_shown(result, token)


def test_create_with_presets(keyportal, org):
    """--preset read-only is the console's preset; --preset all is all the key in use holds."""
    token = org_token(org, [*MANAGE, "secrets:read", "apps:read"])
    read_only = keyportal("keys", "create", "--name", "ro", "--preset", "read-only",
                          env={"KEYPORTAL_API_KEY": token})  # fmt: skip
    assert set(key_of(read_only.stdout.strip()).permissions) == READ_ONLY
    everything = keyportal("--json", "keys", "create", "--name", "all", "--preset", "all",
                           env={"KEYPORTAL_API_KEY": token})  # fmt: skip
    body = json.loads(everything.stdout)
    assert set(body["permissions"]) == {*MANAGE, "secrets:read", "apps:read"}
    assert has_token_format(body["token"])


def test_create_needs_permissions_or_a_preset(keyportal, org):
    """Neither --permission nor --preset (or both) is a usage error."""
    token = org_token(org, MANAGE)
    assert (
        keyportal("keys", "create", "--name", "x", env={"KEYPORTAL_API_KEY": token}).exit_code == 2
    )
    both = keyportal("keys", "create", "--name", "x", "--preset", "all", "--permission", "a:b",
                     env={"KEYPORTAL_API_KEY": token})  # fmt: skip
    assert both.exit_code == 2
    bad_date = keyportal("keys", "create", "--name", "x", "--preset", "all", "--expires-at",
                         "soon", env={"KEYPORTAL_API_KEY": token})  # fmt: skip
    assert bad_date.exit_code == 2
    assert "is not a date like 2027-01-31" in bad_date.stderr


def test_create_refuses_an_unsafe_name_before_sending(keyportal, org):
    """A name with a control character or a direction override stops with exit 2 and the
    server's own message, before any request: here nothing even listens at the address."""
    token = org_token(org, MANAGE)
    for name, code in (("invoice-\u202efdp.exe", "U+202E"), ("two\nlines", "U+000A")):
        result = keyportal(
            "keys", "create", "--name", name, "--preset", "read-only",
            env={"KEYPORTAL_API_KEY": token, "KEYPORTAL_URL": "http://127.0.0.1:9"},
        )  # fmt: skip
        assert result.exit_code == 2, result.output
        assert (
            f"Names cannot contain control characters or text-direction overrides ({code})."
        ) in result.stderr
    assert ApiKey.objects.count() == 1


def test_create_without_api_keys_manage_names_it(keyportal, org):
    """A key without api-keys:manage is told so, and nothing is created."""
    token = org_token(org, ["projects:read"])
    before = ApiKey.objects.count()
    result = keyportal("keys", "create", "--name", "x", "--preset", "read-only",
                       env={"KEYPORTAL_API_KEY": token})  # fmt: skip
    assert result.exit_code == 4
    assert "lacks the permission api-keys:manage" in result.stderr
    assert ApiKey.objects.count() == before


def test_rotate_prints_the_new_token_and_keeps_the_old_during_grace(keyportal, org):
    """Rotation prints the new secret once; with --grace 1h the old one still works."""
    token = org_token(org, MANAGE)
    target = org_token(org, ["projects:read"], name="target")
    key = key_of(target)
    result = keyportal("keys", "rotate", str(key.pk), "--grace", "1h",
                       env={"KEYPORTAL_API_KEY": token})  # fmt: skip
    assert result.exit_code == 0
    rotated = result.stdout.strip()
    assert has_token_format(rotated)
    assert rotated != target
    assert SHOWN_ONCE in result.stderr
    assert "The old secret keeps working for 1 hour." in result.stderr
    assert keyportal("whoami", env={"KEYPORTAL_API_KEY": target}).exit_code == 0
    assert keyportal("whoami", env={"KEYPORTAL_API_KEY": rotated}).exit_code == 0
    assert_never_shown(result, token, target)


def test_rotating_the_stored_key_updates_the_credentials_file(keyportal, org, live_server):
    """Rotating the key the file holds (at once) stores the new secret, so the CLI keeps working."""
    key, token = personal_key(org, user=org.owner, permissions=MANAGE, name="cli")
    store(live_server.url, token, key_id=key.pk)
    result = keyportal("keys", "rotate", str(key.pk))
    assert result.exit_code == 0
    assert credentials.load()["api_key"] == result.stdout.strip()
    assert "now holds the new secret" in result.stderr
    assert keyportal("whoami").exit_code == 0


def test_rotate_an_unknown_key_is_exit_5(keyportal, org):
    """Another tenant's key or no key at all: not found."""
    result = keyportal("keys", "rotate", "987654",
                       env={"KEYPORTAL_API_KEY": org_token(org, MANAGE)})  # fmt: skip
    assert result.exit_code == 5
    assert "Key 987654 was not found" in result.stderr


def test_revoke_asks_first(keyportal, org):
    """Without --yes the command asks; "n" keeps the key, "y" revokes it."""
    token = org_token(org, MANAGE)
    target = key_of(org_token(org, ["projects:read"], name="target"))
    refused = keyportal("keys", "revoke", str(target.pk), input="n\n",
                        env={"KEYPORTAL_API_KEY": token})  # fmt: skip
    assert refused.exit_code == 1
    assert "Revoke key" in refused.stderr
    target.refresh_from_db()
    assert target.revoked_at is None
    accepted = keyportal("keys", "revoke", str(target.pk), input="y\n",
                         env={"KEYPORTAL_API_KEY": token})  # fmt: skip
    assert accepted.exit_code == 0
    assert accepted.stdout == f"Revoked key {target.pk} “target” ({target.preview}).\n"
    target.refresh_from_db()
    assert target.revoked_at is not None
    assert_never_shown(accepted, token)


def test_revoke_with_yes_and_json(keyportal, org):
    """--yes skips the question; --json prints the revoked key, without any token."""
    token = org_token(org, MANAGE)
    target = org_token(org, ["projects:read"], name="target")
    result = keyportal("--json", "keys", "revoke", str(key_of(target).pk), "--yes",
                       env={"KEYPORTAL_API_KEY": token})  # fmt: skip
    assert result.exit_code == 0
    assert json.loads(result.stdout)["state"] == "revoked"
    assert_never_shown(result, token, target)


def test_a_member_manages_their_own_keys_end_to_end(keyportal, org):
    """With the personal key `keyportal login` gives a member, keys create, list, rotate and
    revoke work on their own personal keys, and nothing else is within reach."""
    member_key, token = personal_key(org, permissions=["api-keys:manage", "projects:read"])
    _org_key, _ = personal_key(org, user=org.owner, name="the owner's")
    env = {"KEYPORTAL_API_KEY": token}

    created = keyportal(
        "--json", "keys", "create", "--name", "script", "--permission", "projects:read",
        "--expires-at", (timezone.now() + timedelta(days=7)).date().isoformat(), env=env,
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    made = json.loads(created.stdout)
    assert (made["kind"], made["owner"]["id"]) == ("user", org.member.pk)

    listed = json.loads(keyportal("--json", "keys", "list", env=env).stdout)
    assert {k["name"] for k in listed} == {member_key.name, "script"}

    rotated = keyportal("keys", "rotate", str(made["id"]), env=env)
    assert rotated.exit_code == 0, rotated.output
    assert has_token_format(rotated.stdout.strip())

    revoked = keyportal("keys", "revoke", str(made["id"]), "--yes", env=env)
    assert revoked.exit_code == 0, revoked.output
    assert ApiKey.objects.get(pk=made["id"]).is_revoked

    others = keyportal("keys", "revoke", str(_org_key.pk), "--yes", env=env)
    assert others.exit_code == 5, others.output
    organization = keyportal("keys", "create", "--name", "x", "--kind", "org",
                             "--permission", "projects:read", env=env)  # fmt: skip
    assert organization.exit_code == 4, organization.output
    assert "Only owners and admins" in organization.output
