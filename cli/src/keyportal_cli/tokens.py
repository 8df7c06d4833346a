"""Key tokens: generation, format check, digest and preview. Plain functions, no database.

One definition for the server (which makes and verifies tokens) and the CLI (whose `scan`
recognises them offline): the server depends on this distribution, keyportal-cli.

A token is a prefix naming its kind, 32 base62 characters from `secrets` (about 190 bits) and
6 base62 characters of CRC32 over everything before them, e.g. `sk-project-<32><6>`.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string
import zlib
from collections.abc import Iterator

BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
SECRET_LENGTH = 32
CHECKSUM_LENGTH = 6
PREFIXES = {
    "user": "sk-user-",
    "svc": "sk-svc-",
    "org": "sk-org-",
    "project": "sk-project-",
}
_TOKEN_RE = re.compile(
    r"^(?P<prefix>sk-(?:user|svc|org|project)-)"
    rf"(?P<secret>[0-9A-Za-z]{{{SECRET_LENGTH}}})(?P<checksum>[0-9A-Za-z]{{{CHECKSUM_LENGTH}}})$"
)
KIND_BY_PREFIX = {prefix: kind for kind, prefix in PREFIXES.items()}
# A token inside any text, for secret scanners (`keyportal scan`, gitleaks, TruffleHog; docs/cli.md
# quotes it and a test keeps the two equal). No word boundaries: a key glued to other text
# (`API_KEY_sk-...`, `...<key>_prod`) is still a leak, and the checksum, not the pattern, tells a
# key from a look-alike (a longer run of base62 fails it). A preview (`sk-user-...abcd`) has no run
# to match. Written out, not built from PREFIXES, so that it can be pasted; a test keeps it in step.
TOKEN_PATTERN = r"sk-(?:user|svc|org|project)-[0-9A-Za-z]{38}"  # noqa: S105 - a pattern
_TOKEN_SEARCH_RE = re.compile(TOKEN_PATTERN)


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, remainder = divmod(number, 62)
        digits.append(BASE62[remainder])
    return "".join(reversed(digits))


def checksum(body: str) -> str:
    """Return the 6-character base62 CRC32 of `body` (62**6 > 2**32, so it is exact)."""
    return _base62(zlib.crc32(body.encode("ascii")), CHECKSUM_LENGTH)


def generate_token(kind: str) -> str:
    """Return a new token of `kind` ("user", "svc", "org" or "project")."""
    body = PREFIXES[kind] + "".join(secrets.choice(BASE62) for _ in range(SECRET_LENGTH))
    return body + checksum(body)


def has_token_format(token: str) -> bool:
    """Return True when `token` has a known prefix, the right length and a valid checksum."""
    match = _TOKEN_RE.match(token)
    if match is None:
        return False
    body = token[:-CHECKSUM_LENGTH]
    return secrets.compare_digest(checksum(body), match["checksum"])


def token_candidates(text: str) -> Iterator[str]:
    """Yield each token-shaped string in `text`, in order; has_token_format checks the checksum."""
    for match in _TOKEN_SEARCH_RE.finditer(text):
        yield match.group()


def token_kind(token: str) -> str | None:
    """Return the kind a well-formed token's prefix names, or None."""
    match = _TOKEN_RE.match(token)
    return KIND_BY_PREFIX[match["prefix"]] if match else None


def token_digest(token: str) -> str:
    """Return the SHA-256 hex digest stored for a token (a 190-bit secret needs no slow hash)."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def token_preview(token: str) -> str:
    """Return the displayable preview: the prefix, an ellipsis and the last 4 characters."""
    match = _TOKEN_RE.match(token)
    if match is None:
        raise ValueError("Not a keyportal token.")  # (nor one to quote in an error)
    return f"{match['prefix']}...{token[-4:]}"
