"""Revoke the live keys of service accounts deactivated before deactivation revoked keys.

From this release deactivating a service account revokes its keys, and reactivating brings none
back. Accounts deactivated earlier still hold unrevoked keys, refused only while the account is
inactive; without this migration, reactivating such an account would bring them back to life.
"""

from django.db import migrations
from django.utils import timezone


def revoke(apps, schema_editor):
    ApiKey = apps.get_model("apikeys", "ApiKey")
    ApiKey.objects.filter(
        kind="svc", owner_service_account__is_active=False, revoked_at__isnull=True
    ).update(revoked_at=timezone.now(), previous_digest=None, previous_valid_until=None)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_auditevent_actor_key_id"),
        ("apikeys", "0003_keys_table_indexes"),
    ]

    operations = [migrations.RunPython(revoke, migrations.RunPython.noop)]
