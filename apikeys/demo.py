"""Many demo keys at once, for scale tests: bulk inserts, plaintexts thrown away."""

from __future__ import annotations

import itertools
import secrets
from datetime import timedelta

from django.utils import timezone

from accounts.models import Organization, ServiceAccount, User
from apikeys.models import ApiKey, KeyKind
from apikeys.permissions import READ_ONLY, ordered
from apikeys.tokens import generate_token, token_digest, token_preview

BATCH = 5000


def seed_keys(*, organization: Organization, count: int, created_by: User) -> int:
    """Insert `count` keys spread over the organization's people, service accounts and itself."""
    members = list(User.objects.filter(memberships__organization=organization))
    accounts = list(ServiceAccount.objects.filter(organization=organization))
    owners = itertools.cycle(
        [(KeyKind.USER, m) for m in members]
        + [(KeyKind.SERVICE_ACCOUNT, a) for a in accounts]
        + [(KeyKind.ORGANIZATION, None)]
    )
    run = secrets.token_hex(3)
    now = timezone.now()
    permissions = ordered(READ_ONLY)
    created = 0
    while created < count:
        batch = []
        for i in range(created, min(created + BATCH, count)):
            kind, owner = next(owners)
            token = generate_token(kind)
            batch.append(
                ApiKey(
                    organization=organization,
                    kind=kind,
                    owner_user=owner if kind == KeyKind.USER else None,
                    owner_service_account=owner if kind == KeyKind.SERVICE_ACCOUNT else None,
                    created_by=created_by,
                    name=f"bulk-{run}-{i}",
                    digest=token_digest(token),
                    preview=token_preview(token),
                    permissions=permissions,
                    # Personal keys follow the default policy: they expire within 30 days.
                    expires_at=now + timedelta(days=30) if kind == KeyKind.USER else None,
                    created_at=now - timedelta(seconds=i),
                )
            )
        ApiKey.objects.bulk_create(batch, batch_size=BATCH)
        created += len(batch)
    return created
