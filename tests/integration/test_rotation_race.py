"""Twenty rotations of one key at once leave exactly one valid secret (PostgreSQL only).

api_key_rotate locks the key's row (SELECT ... FOR UPDATE), so concurrent rotations queue up:
each commits a new secret over the previous one, every one of them is recorded, and only the
secret of the last to commit (the last recorded) verifies. SQLite serializes writers anyway, so this needs the
row locks of PostgreSQL to mean anything.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from accounts.access import Actor
from accounts.models import AuditEvent
from apikeys.models import ApiKey, KeyKind
from apikeys.services import api_key_create, api_key_rotate
from apikeys.verification import KeyRejected, verify_token
from keyportal_cli.tokens import token_preview
from tests.integration.conftest import on_postgres

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not on_postgres(), reason="needs PostgreSQL (DATABASE_URL=postgres://...)"),
]

THREADS = 20
OPERATOR = Actor.operator("rotation race test")


def verifies(token: str) -> bool:
    try:
        verify_token(token)
    except KeyRejected:
        return False
    return True


def test_twenty_concurrent_rotations_leave_exactly_one_valid_secret(transactional_db, org):
    assert connection.vendor == "postgresql"
    api_key, first_token = api_key_create(
        actor=OPERATOR,
        organization=org.organization,
        kind=KeyKind.ORGANIZATION,
        name="raced",
        permissions=["projects:read"],
    )
    barrier = threading.Barrier(THREADS, timeout=20)
    tokens: list[str] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def rotate() -> None:
        try:
            mine = ApiKey.objects.get(pk=api_key.pk)  # each thread its own copy and connection
            barrier.wait()
            _, token = api_key_rotate(actor=OPERATOR, api_key=mine, grace="now")
            with lock:
                tokens.append(token)
        except BaseException as error:  # reported below, with the thread's traceback
            with lock:
                failures.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=rotate) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads), "a rotation hung"
    assert not failures, failures

    assert len(tokens) == THREADS
    assert len(set(tokens)) == THREADS
    valid = [token for token in tokens if verifies(token)]
    assert len(valid) == 1
    assert not verifies(first_token)
    api_key.refresh_from_db()
    assert api_key.previous_digest is None  # grace "now": no old secret lingers
    rotations = AuditEvent.objects.filter(
        action="api_key.rotated", target_type="apikey", target_id=str(api_key.pk)
    )
    assert rotations.count() == THREADS
    # The rotations queued on the row lock: the last one recorded is the one whose secret holds.
    assert rotations.order_by("-id").first().detail["preview"] == token_preview(valid[0])
