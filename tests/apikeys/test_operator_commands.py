"""manage.py revoke_api_key, list_api_keys and verify_api_key: the operator's doors."""

from __future__ import annotations

import io
import json
import sys
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.access import Actor
from accounts.models import AuditEvent, AuditEventType, Origin
from apikeys.models import ApiKey, KeyKind, KeyStatus
from apikeys.services import api_key_revoke, api_key_rotate, api_key_update
from keyportal_cli.tokens import generate_token
from tests.apikeys.conftest import operator_key

pytestmark = pytest.mark.django_db
OPERATOR = Actor.operator("operator (tests)")


def run(name: str, *args, stdin: str | None = None) -> tuple[str, str]:
    """Run a command; return what it wrote on standard output and standard error."""
    out, err = io.StringIO(), io.StringIO()
    extra = {"stdin": io.StringIO(stdin)} if stdin is not None else {}
    call_command(name, *args, stdout=out, stderr=err, **extra)
    return out.getvalue(), err.getvalue()


def fails(name: str, *args, stdin: str | None = None) -> tuple[CommandError, str]:
    """Run a command that must fail; return its error and what it wrote on standard output."""
    out = io.StringIO()
    extra = {"stdin": io.StringIO(stdin)} if stdin is not None else {}
    with pytest.raises(CommandError) as raised:
        call_command(name, *args, stdout=out, stderr=io.StringIO(), **extra)
    return raised.value, out.getvalue()


def audit_text() -> str:
    """Every audit row, every column, as one text."""
    return json.dumps(
        list(AuditEvent.objects.values()), default=str, ensure_ascii=False, sort_keys=True
    )


def revocations(api_key: ApiKey) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(
            action=AuditEventType.API_KEY_REVOKED, target_id=str(api_key.pk)
        ).order_by("pk")
    )


# --- revoke_api_key -----------------------------------------------------------------------------


def test_revoke_by_token_on_stdin_records_the_reason_and_never_the_token(org):
    api_key, token = operator_key(org, name="ci deploy")
    out, err = run(
        "revoke_api_key", "--token-stdin", "--reason", "leaked in a CI log", stdin=token + "\n"
    )
    api_key.refresh_from_db()
    assert api_key.is_revoked
    assert "Revoked" in out
    assert api_key.preview in out
    assert "ci deploy" in out
    assert token not in out + err
    (event,) = revocations(api_key)
    assert event.detail["reason"] == "leaked in a CI log"
    assert event.actor_label == "operator (manage.py revoke_api_key)"
    assert event.origin == Origin.CLI
    assert event.actor_user is None
    assert token not in audit_text()
    assert api_key.digest not in audit_text()
    # The API refuses it from the next request.
    from django.test import Client

    response = Client().get("/api/v1/whoami", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.json()["error"]["code"] == "key_revoked"


def test_revoking_twice_is_idempotent(org):
    api_key, token = operator_key(org)
    run("revoke_api_key", "--token-stdin", "--reason", "rotated out", stdin=token)
    out, err = run("revoke_api_key", "--token-stdin", "--reason", "again", stdin=token)
    assert "already revoked" in out
    assert "nothing changed" in out
    assert token not in out + err
    assert len(revocations(api_key)) == 1
    out, _err = run("revoke_api_key", "--id", str(api_key.pk), "--reason", "and again")
    assert "already revoked" in out
    assert len(revocations(api_key)) == 1


def test_token_from_sys_stdin(org, monkeypatch):
    """Without the stdin option the command reads the process's standard input."""
    api_key, token = operator_key(org)
    monkeypatch.setattr(sys, "stdin", io.StringIO(token + "\n"))
    out, err = run("revoke_api_key", "--token-stdin", "--reason", "leaked")
    api_key.refresh_from_db()
    assert api_key.is_revoked
    assert token not in out + err


@pytest.mark.parametrize(
    "args",
    [
        ("revoke_api_key", "--id", "1", "--reason", "leaked", "{token}"),
        ("revoke_api_key", "--token-stdin", "{token}", "--reason", "leaked"),
        ("revoke_api_key", "--reason", "leaked", "--token-stdin={token}"),
        ("verify_api_key", "{token}"),
    ],
)
def test_the_token_is_never_an_argument(org, args):
    """A token given as an argument is refused, and the refusal does not repeat it."""
    api_key, token = operator_key(org)
    name, *rest = (arg.format(token=token) for arg in args)
    error, out = fails(name, *rest)
    assert token not in str(error) + out
    assert token[-4:] not in str(error)
    assert "never given as an argument" in str(error)
    api_key.refresh_from_db()
    assert not api_key.is_revoked


def test_a_reason_is_required(org):
    api_key, _token = operator_key(org)
    with pytest.raises(CommandError, match="--reason"):
        call_command("revoke_api_key", "--id", str(api_key.pk), stdout=io.StringIO())
    error, _out = fails("revoke_api_key", "--id", str(api_key.pk), "--reason", "   ")
    assert "--reason" in str(error)
    api_key.refresh_from_db()
    assert not api_key.is_revoked


def test_a_reason_holding_a_key_is_refused(org):
    """The history is read by owners and admins: a pasted token never gets there."""
    api_key, token = operator_key(org)
    error, _out = fails(
        "revoke_api_key", "--token-stdin", "--reason", f"found {token} in a log", stdin=token
    )
    assert token not in str(error)
    api_key.refresh_from_db()
    assert not api_key.is_revoked
    assert token not in audit_text()


def test_a_reason_may_name_a_preview(org):
    """A preview is no secret: "replaced by sk-org-...abcd" is a fine reason."""
    api_key, _token = operator_key(org)
    other, _ = operator_key(org)
    reason = f"replaced by {other.preview}"
    run("revoke_api_key", "--id", str(api_key.pk), "--reason", reason)
    assert revocations(api_key)[0].detail["reason"] == reason


def test_bad_and_unknown_tokens(org):
    error, _ = fails("revoke_api_key", "--token-stdin", "--reason", "x", stdin="not-a-key")
    assert "not a keyportal API key" in str(error)
    assert "not-a-key" not in str(error)
    unknown = generate_token("org")
    error, _ = fails("revoke_api_key", "--token-stdin", "--reason", "x", stdin=unknown)
    assert "No key" in str(error)
    assert unknown not in str(error)
    error, _ = fails("revoke_api_key", "--token-stdin", "--reason", "x", stdin="")
    assert "Nothing was read" in str(error)


def test_token_of_another_organization_when_one_is_named(org, other_org):
    api_key, token = operator_key(other_org)
    error, _ = fails(
        "revoke_api_key", "--token-stdin", "--organization", "acme", "--reason", "x", stdin=token
    )
    assert "No key" in str(error)
    api_key.refresh_from_db()
    assert not api_key.is_revoked


def test_revoke_by_the_previous_secret_in_its_grace_period(org):
    """A leaked old secret, still working after a rotation: the key it belongs to is revoked."""
    api_key, old = operator_key(org)
    api_key_rotate(actor=OPERATOR, api_key=api_key, grace="24h")
    out, _ = run("revoke_api_key", "--token-stdin", "--reason", "old secret leaked", stdin=old)
    api_key.refresh_from_db()
    assert api_key.is_revoked
    assert old not in out


def test_revoke_by_preview(org):
    api_key, token = operator_key(org, name="by preview")
    out, err = run(
        "revoke_api_key",
        "--preview",
        api_key.preview,
        "--organization",
        "acme",
        "--reason",
        "decommissioned",
    )
    api_key.refresh_from_db()
    assert api_key.is_revoked
    assert "by preview" in out
    assert token not in out + err
    assert revocations(api_key)[0].detail["reason"] == "decommissioned"
    # Again: already revoked, still found (revoked keys keep their preview).
    out, _ = run(
        "revoke_api_key", "--preview", api_key.preview, "--organization", "acme", "--reason", "x"
    )
    assert "already revoked" in out


def test_a_preview_matching_no_key(org):
    error, _ = fails(
        "revoke_api_key", "--preview", "sk-org-...zzzz", "--organization", "acme", "--reason", "x"
    )
    assert "No API key of Acme has the preview sk-org-...zzzz" in str(error)


def test_another_organizations_preview_is_not_found(org, other_org):
    theirs, _token = operator_key(other_org)
    error, _ = fails(
        "revoke_api_key", "--preview", theirs.preview, "--organization", "acme", "--reason", "x"
    )
    assert "No API key of Acme" in str(error)
    theirs.refresh_from_db()
    assert not theirs.is_revoked


def test_a_preview_matching_two_keys_names_them(org):
    first, _ = operator_key(org, name="first")
    second, _ = operator_key(org, name="second")
    ApiKey.objects.filter(pk=second.pk).update(preview=first.preview)
    error, _ = fails(
        "revoke_api_key", "--preview", first.preview, "--organization", "acme", "--reason", "x"
    )
    message = str(error)
    assert "2 API keys of Acme have the preview" in message
    assert f"--id {first.pk}" in message
    assert f"--id {second.pk}" in message
    assert not ApiKey.objects.filter(pk__in=[first.pk, second.pk], revoked_at__isnull=False)


def test_preview_needs_an_organization(org):
    api_key, _ = operator_key(org)
    error, _ = fails("revoke_api_key", "--preview", api_key.preview, "--reason", "x")
    assert "--organization" in str(error)


def test_revoke_by_id_and_a_personal_key(org):
    """The operator may revoke any key, a member's personal key included."""
    api_key, _ = operator_key(org, kind=KeyKind.USER, owner=org.member)
    out, _ = run("revoke_api_key", "--id", str(api_key.pk), "--reason", "left the team")
    api_key.refresh_from_db()
    assert api_key.is_revoked
    assert "personal key" in out


def test_unknown_id_and_id_in_another_organization(org, other_org):
    error, _ = fails("revoke_api_key", "--id", "999999", "--reason", "x")
    assert "No API key with the id 999999" in str(error)
    theirs, _ = operator_key(other_org)
    error, _ = fails(
        "revoke_api_key", "--id", str(theirs.pk), "--organization", "acme", "--reason", "x"
    )
    assert "in Acme" in str(error)
    theirs.refresh_from_db()
    assert not theirs.is_revoked
    error, _ = fails("revoke_api_key", "--id", "1", "--organization", "nope", "--reason", "x")
    assert "No organization" in str(error)


def test_an_already_compromised_key(org):
    api_key, token = operator_key(org)
    now = timezone.now()
    ApiKey.objects.filter(pk=api_key.pk).update(compromised_at=now, revoked_at=now)
    out, _ = run("revoke_api_key", "--token-stdin", "--reason", "x", stdin=token)
    assert "already revoked (reported leaked)" in out


# --- list_api_keys ------------------------------------------------------------------------------


@pytest.fixture
def keys(org, other_org, bot):
    """Keys of several kinds and states in Acme, and one in Globex; with their tokens."""
    made = {
        "deploy": operator_key(org, name="deploy", kind=KeyKind.SERVICE_ACCOUNT, owner=bot),
        "reports": operator_key(org, name="reports"),
        "laptop": operator_key(org, name="laptop", kind=KeyKind.USER, owner=org.member),
        "paused": operator_key(org, name="paused"),
        "gone": operator_key(org, name="gone"),
        "limited": operator_key(org, name="limited", allowed_ips=["10.0.0.0/8"]),
        "globex": operator_key(other_org, name="globex-only"),
    }
    api_key_update(actor=OPERATOR, api_key=made["paused"][0], status=KeyStatus.DISABLED)
    api_key_revoke(actor=OPERATOR, api_key=made["gone"][0])
    return made


def test_list_as_a_table_never_prints_a_token(keys):
    out, err = run("list_api_keys", "--organization", "acme")
    lines = out.splitlines()
    assert lines[0].split() == [
        "ID",
        "NAME",
        "KIND",
        "OWNER",
        "PREVIEW",
        "STATE",
        "EXPIRES",
        "LAST",
        "USED",
    ]
    for name in ("deploy", "reports", "laptop", "paused", "limited"):
        assert name in out
        assert keys[name][0].preview in out
    assert "gone" not in out  # revoked keys only with --status revoked
    assert "globex-only" not in out
    assert "5 keys in Acme." in err
    for api_key, token in keys.values():
        assert token not in out + err
        assert api_key.digest not in out + err


def test_list_as_json(keys):
    out, err = run("list_api_keys", "--organization", "acme", "--json")
    listed = json.loads(out)
    assert {row["name"] for row in listed} == {"deploy", "reports", "laptop", "paused", "limited"}
    row = next(row for row in listed if row["name"] == "deploy")
    assert row["kind"] == "svc"
    assert row["state"] == "active"
    assert row["preview"] == keys["deploy"][0].preview
    assert row["owner"]["type"] == "service_account"  # as the API says it (GET /keys)
    assert "digest" not in row and "token" not in row
    assert err == ""
    for _api_key, token in keys.values():
        assert token not in out


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--status", "revoked"], {"gone"}),
        (["--status", "disabled"], {"paused"}),
        (["--status", "active"], {"deploy", "reports", "laptop", "limited"}),
        (["--kind", "svc"], {"deploy"}),
        (["--kind", "user"], {"laptop"}),
        (["--name", "REP"], {"reports"}),
        (["--protection", "ip_allowlist"], {"limited"}),
        (["--unused", "never"], {"deploy", "reports", "laptop", "paused", "limited"}),
        (["--unused", "30"], set()),
        (["--kind", "org", "--status", "disabled"], {"paused"}),
    ],
)
def test_list_filters_as_in_the_console(keys, args, names):
    out, _ = run("list_api_keys", "--organization", "acme", "--json", *args)
    assert {row["name"] for row in json.loads(out)} == names


def test_list_by_owner(keys, org):
    out, _ = run("list_api_keys", "--organization", "acme", "--json", "--owner", org.member.email)
    assert [row["name"] for row in json.loads(out)] == ["laptop"]
    out, err = run("list_api_keys", "--organization", "acme", "--owner", "nobody@example.com")
    assert out == ""
    assert "No member or service account of Acme has the email nobody@example.com." in err


def test_list_with_a_limit_newest_first(keys):
    out, _ = run("list_api_keys", "--organization", "acme", "--json", "--limit", "2")
    assert [row["name"] for row in json.loads(out)] == ["limited", "paused"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--status", "sleeping"], "--status: Choose a status from the list."),
        (["--kind", "robot"], "--kind: Choose a kind of key from the list."),
        (["--owner", "not-an-email"], "--owner: Enter an email address"),
        (["--unused", "7"], "--unused: Choose a time of last use from the list."),
        (["--protection", "moat"], "--protection: Choose a protection from the list."),
        (["--name", "x" * 101], "--name: Search for at most 100 characters."),
        (["--limit", "0"], "--limit must be 1 or more."),
    ],
)
def test_list_refuses_bad_filters_with_the_consoles_messages(keys, args, message):
    error, out = fails("list_api_keys", "--organization", "acme", *args)
    assert message in str(error)
    assert out == ""


def test_list_unknown_organization(db):
    error, _ = fails("list_api_keys", "--organization", "nope")
    assert "No organization with the slug “nope”." in str(error)


# --- verify_api_key -----------------------------------------------------------------------------


def test_verify_a_valid_key(org):
    api_key, token = operator_key(
        org, name="reports", permissions=("projects:read", "secrets:read")
    )
    out, err = run("verify_api_key", stdin=token + "\n")
    assert out.startswith("Valid.")
    for text in (
        "reports",
        "organization",
        "Acme (acme)",
        api_key.preview,
        "active",
        "projects:read",
        "secrets:read",
        "effective permissions",
    ):
        assert text in out
    assert token not in out + err
    assert api_key.digest not in out + err


def test_verify_a_personal_key_shows_what_its_role_allows(org):
    _api_key, token = operator_key(
        org, kind=KeyKind.USER, owner=org.member, permissions=("projects:read", "members:update")
    )
    out, _ = run("verify_api_key", stdin=token)
    effective = next(line for line in out.splitlines() if "effective permissions" in line)
    assert "projects:read" in effective
    assert "members:update" not in effective  # a member's role does not hold it


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ("revoke", "key_revoked"),
        ("disable", "key_disabled"),
        ("expire", "key_expired"),
        ("compromise", "key_compromised"),
    ],
)
def test_verify_says_why_a_key_is_not_valid(org, change, code):
    api_key, token = operator_key(org, name="old one")
    if change == "revoke":
        api_key_revoke(actor=OPERATOR, api_key=api_key)
    elif change == "disable":
        api_key_update(actor=OPERATOR, api_key=api_key, status=KeyStatus.DISABLED)
    elif change == "expire":
        ApiKey.objects.filter(pk=api_key.pk).update(expires_at=timezone.now() - timedelta(hours=1))
    else:
        now = timezone.now()
        ApiKey.objects.filter(pk=api_key.pk).update(compromised_at=now, revoked_at=now)
    error, out = fails("verify_api_key", stdin=token)
    assert error.returncode == 1
    assert out.startswith(f"Not valid ({code})")
    assert "old one" in out
    assert api_key.preview in out
    assert token not in out + str(error)


def test_verify_garbage_and_unknown_tokens(org):
    error, out = fails("verify_api_key", stdin="hello world")
    assert error.returncode == 1
    assert "not a keyportal API key" in out
    assert "hello" not in out
    unknown = generate_token("svc")
    error, out = fails("verify_api_key", stdin=unknown)
    assert "Not valid (invalid_key)" in out
    assert "No key of this installation has this token." in out
    assert unknown not in out
    typo = unknown[:-1] + ("A" if unknown[-1] != "A" else "B")
    _error, out = fails("verify_api_key", stdin=typo)
    assert "checksum" in out


def test_verify_a_key_with_an_allowlist(org):
    _api_key, token = operator_key(org, allowed_ips=["10.0.0.0/8"])
    _error, out = fails("verify_api_key", stdin=token)
    assert "Not valid (ip_not_allowed)" in out
    assert "--ip" in out
    _error, out = fails("verify_api_key", "--ip", "192.0.2.1", stdin=token)
    assert "Not valid (ip_not_allowed)" in out
    out, _ = run("verify_api_key", "--ip", "10.1.2.3", stdin=token)
    assert out.startswith("Valid.")


def test_verify_counts_nothing_against_the_key(org):
    api_key, token = operator_key(org, budget={"amount": 1})
    for _ in range(3):
        out, _ = run("verify_api_key", stdin=token)
        assert out.startswith("Valid.")
    api_key.refresh_from_db()
    assert api_key.last_used_at is None


def test_verify_the_previous_secret_in_its_grace_period(org):
    api_key, old = operator_key(org)
    api_key_rotate(actor=OPERATOR, api_key=api_key, grace="1h")
    out, _ = run("verify_api_key", stdin=old)
    assert out.startswith("Valid (its previous secret")
    assert old not in out


def test_verify_from_sys_stdin(org, monkeypatch):
    _api_key, token = operator_key(org)
    monkeypatch.setattr(sys, "stdin", io.StringIO(token))
    out, _ = run("verify_api_key")
    assert out.startswith("Valid.")
