"""No plaintext token anywhere: not in any table, not in any log line, not in the cache."""

from __future__ import annotations

import logging
import pickle
from io import StringIO

import pytest
from django.contrib.sessions.models import Session
from django.core import mail
from django.core.cache import caches
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apikeys.models import ApiKey
from tests.apikeys.conftest import (
    AUDIT_URL,
    ORGANIZATION_KEYS_URL,
    PERSONAL_KEYS_URL,
    create_data,
    create_url,
    delete_url,
    detail_url,
    revealed_token,
    rotate_url,
    secret_part,
)

pytestmark = pytest.mark.django_db


def every_stored_value() -> list[str]:
    """Return every value of every row of every table in the database, as text."""
    values = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            for row in cursor.fetchall():
                values.extend(
                    value.decode(errors="replace") if isinstance(value, bytes) else str(value)
                    for value in row
                )
    # Sessions are signed and encoded: read them decoded too.
    values.extend(str(session.get_decoded()) for session in Session.objects.all())
    return values


def cached_values() -> list[bytes]:
    """Return what the local-memory caches hold, pickled, for a substring search."""
    found = []
    for cache in caches.all():
        store = getattr(cache, "_cache", None)
        if isinstance(store, dict):
            found.extend(
                value if isinstance(value, bytes) else pickle.dumps(value)
                for value in store.values()
            )
    return found


def assert_nowhere(token: str, texts: list[str], where: str) -> None:
    secret = secret_part(token)
    for text in texts:
        assert secret not in text, f"a plaintext token is in {where}: {text[:200]}"


@pytest.fixture
def everything_logged(caplog):
    """Capture every log record at DEBUG, SQL statements with their parameters included."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django")
    with CaptureQueriesContext(connection) as queries:
        yield caplog, queries


def test_no_table_log_or_cache_holds_a_plaintext(client_for, org, tree, bot, everything_logged):
    """After keys of every kind are made, rotated and revoked, no plaintext is stored or logged."""
    caplog, queries = everything_logged
    member, admin, owner = client_for(org.member), client_for(org.admin), client_for(org.owner)
    tokens = [
        revealed_token(member.post(create_url("user"), create_data(name="laptop"))),
        revealed_token(admin.post(create_url("org"), create_data(name="ci"))),
        revealed_token(admin.post(create_url("project", tree.project.pk), create_data())),
        revealed_token(owner.post(create_url("svc", bot.pk), create_data(name="deploy"))),
    ]
    assert ApiKey.objects.count() == 4
    org_key = ApiKey.objects.get(kind="org")
    user_key = ApiKey.objects.get(kind="user")
    tokens.append(revealed_token(admin.post(rotate_url(org_key), {"grace": "24h"})))
    tokens.append(revealed_token(member.post(rotate_url(user_key), {"grace": "now"})))
    # A refused create, a revoke, and every page that shows keys, with logging on throughout.
    assert member.post(create_url("user"), create_data(name="laptop")).status_code == 422
    assert member.post(delete_url(user_key)).status_code == 302
    for path in (PERSONAL_KEYS_URL, ORGANIZATION_KEYS_URL, AUDIT_URL, detail_url(org_key)):
        assert owner.get(path).status_code == 200
    stdout, stderr = StringIO(), StringIO()
    call_command(
        "create_api_key",
        "--organization=acme",
        "--name=bootstrap",
        "--preset=read-only",
        stdout=stdout,
        stderr=stderr,
    )
    tokens.append(stdout.getvalue().strip())

    assert len(set(tokens)) == 7
    assert ApiKey.objects.filter(previous_digest__isnull=False).count() == 1
    stored = every_stored_value()
    logged = [record.getMessage() for record in caplog.records] + [caplog.text]
    sql = [query["sql"] for query in queries.captured_queries]
    cached = [value.decode("latin-1") for value in cached_values()]
    sent = [str(message.message()) for message in mail.outbox]
    assert len(sql) > 50
    assert any(record.name == "django.db.backends" for record in caplog.records)
    assert any("INSERT" in statement and "apikeys_apikey" in statement for statement in sql)
    for token in tokens:
        assert_nowhere(token, stored, "the database")
        assert_nowhere(token, logged, "the logs")
        assert_nowhere(token, sql, "an SQL statement")
        assert_nowhere(token, cached, "the cache")
        assert_nowhere(token, sent, "an e-mail")
    assert secret_part(tokens[-1]) not in stderr.getvalue()


def test_the_search_would_find_a_stored_plaintext(org):
    """The table dump does see key rows: a token written into a name would be caught."""
    from tests.apikeys.conftest import new_key

    api_key, token = new_key(org)
    ApiKey.objects.filter(pk=api_key.pk).update(name=token)

    assert any(secret_part(token) in value for value in every_stored_value())


def test_responses_after_the_reveal_carry_no_plaintext_in_cookies(client_for, org):
    """The reveal sets no cookie holding the token, and the next responses neither."""
    client = client_for(org.member)
    response = client.post(create_url("user"), create_data())
    token = revealed_token(response)

    follow_up = client.get(PERSONAL_KEYS_URL)

    for cookies in (response.cookies, follow_up.cookies, client.cookies):
        assert secret_part(token) not in str(cookies)
    assert "Location" not in response
    assert secret_part(token) not in str(response.headers)
