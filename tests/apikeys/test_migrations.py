"""Data migrations, run against a real schema at the state before them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("apikeys", "0003_keys_table_indexes"), ("accounts", "0003_auditevent_actor_key_id")]
AFTER = [("apikeys", "0004_revoke_keys_of_deactivated_service_accounts")]


def test_keys_of_service_accounts_deactivated_earlier_are_revoked():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    apps = executor.loader.project_state(BEFORE).apps
    Organization = apps.get_model("accounts", "Organization")
    ServiceAccount = apps.get_model("accounts", "ServiceAccount")
    ApiKey = apps.get_model("apikeys", "ApiKey")
    org = Organization.objects.create(name="Acme", slug="acme-migration")
    active = ServiceAccount.objects.create(organization=org, name="on", identifier="on@x.y")
    inactive = ServiceAccount.objects.create(
        organization=org, name="off", identifier="off@x.y", is_active=False
    )
    earlier = timezone.now() - timedelta(days=3)

    def key(account, n, **extra):
        return ApiKey.objects.create(
            organization=org,
            kind="svc",
            owner_service_account=account,
            name=f"k{n}",
            digest=f"{n:064d}",
            preview=f"sk-svc-...{n:04d}",
            permissions=[],
            scopes={},
            **extra,
        )

    kept, gone, old = key(active, 1), key(inactive, 2), key(inactive, 3, revoked_at=earlier)

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)

    assert ApiKey.objects.get(pk=kept.pk).revoked_at is None
    assert ApiKey.objects.get(pk=gone.pk).revoked_at is not None
    assert ApiKey.objects.get(pk=old.pk).revoked_at == earlier
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
