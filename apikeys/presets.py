"""Presets: a key's permissions from one choice, so that a name alone makes a working key.

DESIGN.md, "Permissions and scopes": personal keys are pre-set to "Same as my role" (all the
owner's role holds, followed as the role changes), project keys to "This project" (every
permission that scopes to a project, on that project), organization and service-account keys
to "Read-only".
"""

from __future__ import annotations

from django.core.exceptions import ValidationError

from apikeys.models import KeyKind, KeyPreset
from apikeys.permissions import ALL, PROJECT_SCOPED, READ_ONLY

CHOICES: dict[str, tuple[str, ...]] = {
    KeyKind.USER: (KeyPreset.ROLE, KeyPreset.READ_ONLY, KeyPreset.CUSTOM),
    KeyKind.PROJECT: (KeyPreset.PROJECT, KeyPreset.READ_ONLY, KeyPreset.CUSTOM),
    KeyKind.ORGANIZATION: (KeyPreset.READ_ONLY, KeyPreset.ALL, KeyPreset.CUSTOM),
    KeyKind.SERVICE_ACCOUNT: (KeyPreset.READ_ONLY, KeyPreset.ALL, KeyPreset.CUSTOM),
}
DEFAULT: dict[str, str] = {
    KeyKind.USER: KeyPreset.ROLE,
    KeyKind.PROJECT: KeyPreset.PROJECT,
    KeyKind.ORGANIZATION: KeyPreset.READ_ONLY,
    KeyKind.SERVICE_ACCOUNT: KeyPreset.READ_ONLY,
}


def offered(kind: str) -> frozenset[str]:
    """Return the permissions a key of `kind` may hold at all."""
    return PROJECT_SCOPED if kind == KeyKind.PROJECT else ALL


def preset_permissions(preset: str, kind: str, holds: frozenset[str]) -> frozenset[str]:
    """Return what `preset` gives a key of `kind`; `holds` is what the role (for "Same as my
    role") or the maker (for "Allow all") holds over the whole organization."""
    if preset not in CHOICES[kind] or preset == KeyPreset.CUSTOM:
        allowed = ", ".join(KeyPreset(p).label for p in CHOICES[kind])
        raise ValidationError({"preset": f"Choose one of: {allowed}."})
    match preset:
        case KeyPreset.ROLE | KeyPreset.ALL:
            wanted = holds
        case KeyPreset.READ_ONLY:
            wanted = READ_ONLY
        case _:
            wanted = PROJECT_SCOPED
    return wanted & offered(kind)
