"""verify_token's lookup, compiled once per process, gives what evaluating the ORM query gives.

apikeys.verification._lookup runs the SQL of `_lookup_query(digest)` without building and
compiling that query on every request. On the real database (SQLite, or PostgreSQL with
DATABASE_URL), for every kind of key, it must return the same row, the same field values (after
the database's converters), the same owner role, and the same related objects already loaded,
in exactly one query. It runs through Django's cursor when queries are being recorded (as in
the tests that count them) and on the driver's own cursor otherwise (as in production); both
paths must agree with the ORM.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone

from accounts.access import Actor
from accounts.models import Membership
from apikeys.models import ApiKey, KeyKind
from apikeys.services import api_key_create, api_key_rotate
from apikeys.verification import _lookup, _lookup_query
from keyportal_cli.tokens import token_digest
from tests.apikeys.conftest import new_key
from tests.factories import ProjectFactory, ServiceAccountFactory, TeamFactory

pytestmark = pytest.mark.django_db
RELATIONS = ("organization", "owner_user", "owner_service_account", "owner_project")


def snapshot(api_key: ApiKey) -> dict:
    """Every loaded value of the key and of its loaded relations, and its owner's role."""
    fields = loaded_fields(api_key)
    related = {}
    for name in RELATIONS:
        relation = ApiKey._meta.get_field(name)
        assert relation.is_cached(api_key), f"{name} is not loaded with the key"
        value = relation.get_cached_value(api_key)
        related[name] = None if value is None else loaded_fields(value)
    return {"fields": fields, "related": related, "owner_role": api_key.owner_role}


def loaded_fields(instance) -> dict:
    """The values an instance holds without a query: the lookup reads only some columns of the
    key's relations, so which ones are loaded is part of what must match."""
    deferred = instance.get_deferred_fields()
    return {
        f.attname: getattr(instance, f.attname)
        for f in instance._meta.concrete_fields
        if f.attname not in deferred
    }


def keys_of_every_kind(org) -> list[tuple[str, str]]:
    """Return (label, token) for a key of each kind, a key whose owner left, and an old secret
    still in its grace period."""
    owner = Actor(user=org.owner)
    organization = org.organization
    bot = ServiceAccountFactory(organization=organization, created_by=org.owner)
    project = ProjectFactory(team=TeamFactory(organization=organization))
    week = timezone.now() + timedelta(days=7)

    def make(kind, holder=None, *, actor=owner, **extra):
        return api_key_create(
            actor=actor,
            organization=organization,
            kind=kind,
            owner=holder,
            permissions=["projects:read"],
            **extra,
        )

    made = [
        ("personal", make(KeyKind.USER, org.member, actor=Actor(user=org.member), expires_at=week)),
        ("service account", make(KeyKind.SERVICE_ACCOUNT, bot)),
        ("project", make(KeyKind.PROJECT, project)),
        ("organization", make(KeyKind.ORGANIZATION)),
    ]
    leaver_key = make(KeyKind.USER, org.admin, actor=Actor(user=org.admin), expires_at=week)
    Membership.objects.filter(organization=organization, user=org.admin).delete()
    made.append(("owner left", leaver_key))
    rotating, old_token = make(KeyKind.ORGANIZATION, name="rotating")
    api_key_rotate(actor=owner, api_key=rotating, grace="24h")
    made.append(("previous secret in grace", (rotating, old_token)))
    return [(label, token) for label, (_key, token) in made]


def test_lookup_gives_what_the_orm_gives_for_every_kind_of_key(org, django_assert_num_queries):
    for label, token in keys_of_every_kind(org):
        digest = token_digest(token)
        expected = list(_lookup_query(digest))
        assert len(expected) == 1, label
        with django_assert_num_queries(1):
            found = _lookup(digest)
            # Relations come with the key: reading them makes no further query.
            for name in RELATIONS:
                getattr(found, name)
        assert snapshot(found) == snapshot(expected[0]), label
        assert found._state.adding is False
        assert found._state.db == expected[0]._state.db


def test_the_lookup_reads_no_password_hash_and_what_whoami_needs_without_a_query(
    org, django_assert_num_queries
):
    _key, token = new_key(org)  # the member's personal key
    assert "password" not in str(_lookup_query(token_digest(token)).query)
    with django_assert_num_queries(1):
        found = _lookup(token_digest(token))
        assert "password" in found.owner_user.get_deferred_fields()
        # Of the key itself, only what no check reads is left for later: the leak report and
        # the last address its allowlist refused.
        assert found.get_deferred_fields() == {
            "compromise_report",
            "last_refused_ip",
            "last_refused_at",
        }
        # What the checks, whoami and the owner's name read is loaded with the key.
        assert str(found.owner) == str(org.member)
        assert (found.organization.name, found.organization.slug) == (
            org.organization.name,
            org.organization.slug,
        )
        assert found.owner_user.is_active


def test_lookup_of_an_unknown_digest_finds_nothing(org, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert _lookup(token_digest("sk-org-" + "0" * 38)) is None


@pytest.mark.parametrize("prepared", [True, False], ids=["prepared", "plain"])
def test_the_driver_path_gives_what_the_orm_gives(org, monkeypatch, settings, prepared):
    """With no query being recorded, the lookup goes to the driver's cursor, never Django's;
    on PostgreSQL, as a prepared statement unless KEYPORTAL_PREPARED_LOOKUP is off."""
    settings.KEYPORTAL_PREPARED_LOOKUP = prepared
    tokens = keys_of_every_kind(org)
    expected = {label: list(_lookup_query(token_digest(token))) for label, token in tokens}
    assert not connection.queries_logged

    def no_django_cursor():
        raise AssertionError("the lookup went through Django's cursor wrapper")

    monkeypatch.setattr(connection, "cursor", no_django_cursor)
    for label, token in tokens:
        found = _lookup(token_digest(token))
        assert snapshot(found) == snapshot(expected[label][0]), label
    assert _lookup(token_digest("sk-org-" + "0" * 38)) is None
    if connection.vendor == "postgresql":
        monkeypatch.undo()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
                ['%FROM "apikeys_apikey"%'],
            )
            assert cursor.fetchone()[0] == (1 if prepared else 0)
        # Django's own queries are never prepared: the threshold is as Django left it.
        assert connection.connection.prepare_threshold is None


def test_the_driver_path_refuses_to_run_in_a_broken_transaction(org):
    """As Django's cursor does: after a failed statement inside atomic(), no further query."""
    from django.db import transaction
    from django.db.transaction import TransactionManagementError

    digest = token_digest(keys_of_every_kind(org)[0][1])
    with transaction.atomic():
        transaction.set_rollback(True)
        with pytest.raises(TransactionManagementError):
            _lookup(digest)


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs a server to lose")
def test_the_lookup_survives_a_connection_lost_between_requests(org, settings):
    """Outside a transaction the lookup is the health check: a connection the server dropped
    (a restart) is replaced and the lookup answers, with no `SELECT 1` first."""
    settings.KEYPORTAL_PREPARED_LOOKUP = True
    token = keys_of_every_kind(org)[3][1]
    digest = token_digest(token)
    assert _lookup(digest) is not None
    connection.health_check_enabled = True
    connection.health_check_done = False
    with connection.connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    finally:
        other.close()

    found = _lookup(digest)

    assert found is not None and found.digest == digest
    assert connection.health_check_done is True
    with connection.connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != pid
