"""Readable labels of audit events: what the audit log and a key's history say happened."""

from __future__ import annotations

import pytest

from accounts.models import AuditEvent, AuditEventType, join_phrases

E = AuditEventType


def event(action: str, detail: dict | None = None) -> AuditEvent:
    return AuditEvent(action=action, detail=detail or {})


@pytest.mark.parametrize(
    ("action", "detail", "history", "log"),
    [
        (E.API_KEY_CREATED, {}, "Created", "API key created"),
        (E.API_KEY_UPDATED, {"changed": ["status"], "status": "disabled"}, "Disabled",
         "API key disabled"),
        (E.API_KEY_UPDATED, {"changed": ["status"], "status": "active"}, "Enabled",
         "API key enabled"),
        (E.API_KEY_UPDATED, {"changed": ["permissions"]}, "Permissions changed",
         "API key permissions changed"),
        (E.API_KEY_UPDATED, {"changed": ["scopes"]}, "Permissions changed",
         "API key permissions changed"),
        (E.API_KEY_UPDATED, {"changed": ["preset", "permissions", "scopes"]},
         "Permissions changed", "API key permissions changed"),
        (E.API_KEY_UPDATED, {"changed": ["name"]}, "Renamed", "API key renamed"),
        (E.API_KEY_UPDATED, {"changed": ["expires_at"]}, "Expiry changed",
         "API key expiry changed"),
        (E.API_KEY_UPDATED, {"changed": ["expires_at", "name", "status"], "status": "disabled"},
         "Disabled, renamed and expiry changed", "API key disabled, renamed and expiry changed"),
        (E.API_KEY_UPDATED, {"changed": ["status"]}, "Status changed", "API key status changed"),
        (E.API_KEY_UPDATED, {"changed": ["colour"]}, "Colour changed", "API key colour changed"),
        (E.API_KEY_UPDATED, {}, "Edited", "API key edited"),
        (E.API_KEY_ROTATED, {"grace": "24h"}, "Rotated (old secret works 24 hours)",
         "API key rotated (old secret works 24 hours)"),
        (E.API_KEY_ROTATED, {"grace": "1h"}, "Rotated (old secret works 1 hour)",
         "API key rotated (old secret works 1 hour)"),
        (E.API_KEY_ROTATED, {"grace": "now"}, "Rotated (old secret stopped at once)",
         "API key rotated (old secret stopped at once)"),
        (E.API_KEY_ROTATED, {}, "Rotated", "API key rotated"),
        (E.API_KEY_REVOKED, {"bulk": True}, "Revoked", "API key revoked"),
        (E.API_KEY_REFUSED, {"action": "rotate", "reason": "You cannot rotate this key."},
         "Refused: rotate — You cannot rotate this key.",
         "Refused: rotate — You cannot rotate this key."),
        (E.API_KEY_REFUSED, {}, "Refused", "Refused"),
        (E.MEMBER_ROLE_CHANGED, {"from": "member", "to": "admin"},
         "Member's role changed from member to admin",
         "Member's role changed from member to admin"),
        (E.SECRET_SET, {"version": 3}, "Secret set (version 3)", "Secret set (version 3)"),
        (E.APP_PUBLISHED, {"version": 2}, "App version published (version 2)",
         "App version published (version 2)"),
        (E.TEAM_CREATED, {}, "Team created", "Team created"),
        (E.SERVICE_ACCOUNT_DEACTIVATED, {}, "Service account deactivated",
         "Service account deactivated"),
    ],
)  # fmt: skip
def test_labels(action, detail, history, log):
    """Each event reads as words: briefly in its target's history, naming its kind in the log."""
    assert event(action, detail).history_label == history
    assert event(action, detail).label == log


def test_an_action_the_enum_no_longer_knows_reads_as_itself():
    """An old row whose action left the enum is shown as recorded, never an error."""
    assert event("team.touched").label == "team.touched"
    assert event("team.touched").history_label == "team.touched"
    assert event("team.touched").event_type is None


def test_a_detail_that_is_not_a_dict_is_ignored():
    """A detail of another shape (hand-written rows) gives the plain label, never an error."""
    assert AuditEvent(action=E.API_KEY_UPDATED, detail=["name"]).history_label == "Edited"
    assert event(E.API_KEY_UPDATED, {"changed": "name"}).history_label == "Edited"
    assert event(E.API_KEY_ROTATED, {"grace": ["24h"]}).history_label == "Rotated"


def test_every_event_type_has_a_label_and_a_group():
    """Every member of the enum reads as words and belongs to a group of the filter."""
    for event_type in AuditEventType:
        assert event(event_type).label
        assert "." not in event(event_type).label
        assert event_type.group


def test_join_phrases():
    """Phrases join as a sentence, the first capitalised."""
    assert join_phrases(["Renamed"]) == "Renamed"
    assert join_phrases(["Renamed", "Expiry changed"]) == "Renamed and expiry changed"
    assert join_phrases(["Disabled", "Renamed", "Expiry changed"]) == (
        "Disabled, renamed and expiry changed"
    )
