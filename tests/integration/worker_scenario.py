"""Data for tests/integration/test_worker.py, written and read in the scratch database.

Run in a process of its own, with the scratch database's environment:

    python -m tests.integration.worker_scenario build NOW     # prints the keys' ids (JSON)
    python -m tests.integration.worker_scenario inspect       # prints what the jobs did (JSON)

`build` makes Acme (an owner, an admin, a member), a 90-day stale-key policy for organization
keys, and three organization keys, dated against NOW (ISO 8601): one expiring 3 days after it,
one made 100 days before and never used, one made as long before but used the day before.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import timedelta


def build(now: str) -> dict[str, int]:
    from accounts.access import Actor
    from accounts.models import Membership, Role, User
    from accounts.services import organization_create
    from apikeys.models import ApiKey, KeyKind, KeyPolicy
    from apikeys.services import api_key_create
    from keyportal.jobs import as_of

    moment = as_of(now)
    owner = User.objects.create_user("owner@acme.test", "x" * 16, display_name="Olivia Owner")
    organization = organization_create(actor=Actor(user=owner), name="Acme")
    for email, role in (("admin@acme.test", Role.ADMIN), ("member@acme.test", Role.MEMBER)):
        user = User.objects.create_user(email, "x" * 16, display_name=email)
        Membership.objects.create(user=user, organization=organization, role=role)
    KeyPolicy.objects.create(
        organization=organization, kind=KeyKind.ORGANIZATION, disable_unused_after_days=90
    )
    columns = {
        "expiring": {"expires_at": moment + timedelta(days=3), "last_used_at": moment},
        "stale": {"created_at": moment - timedelta(days=100)},
        "used": {
            "created_at": moment - timedelta(days=100),
            "last_used_at": moment - timedelta(days=1),
        },
    }
    ids = {}
    for name, fields in columns.items():
        api_key, _ = api_key_create(
            actor=Actor.operator("worker integration test"),
            organization=organization,
            kind=KeyKind.ORGANIZATION,
            name=name,
            preset="read-only",
        )
        ApiKey.objects.filter(pk=api_key.pk).update(**fields)
        ids[name] = api_key.pk
    return ids


def inspect() -> dict:
    from django_tasks_db.models import DBTaskResult

    from accounts.models import AuditEvent
    from apikeys.models import ApiKey, KeyNotice

    return {
        "status": dict(ApiKey.objects.values_list("name", "status")),
        "notices": sorted(KeyNotice.objects.values_list("api_key__name", "kind")),
        "disables": [
            {"key": e.target_label, "origin": e.origin, "actor": e.actor_label, **e.detail}
            for e in AuditEvent.objects.filter(action="api_key.updated").order_by("id")
        ],
        "tasks": sorted(
            (r.task_path.rpartition(".")[2], r.status)
            for r in DBTaskResult.objects.order_by("enqueued_at")
        ),
    }


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "keyportal.settings")
    import django

    django.setup()
    command, *args = sys.argv[1:]
    print(json.dumps(build(*args) if command == "build" else inspect()))
