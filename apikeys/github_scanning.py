"""GitHub secret scanning, as a partner: GitHub sends the keyportal keys it finds in public code.

GitHub POSTs a JSON array of `{"token", "type", "url", "source"}`, signed: the header
`Github-Public-Key-Signature` is a base64 DER ECDSA (P-256, SHA-256) signature of the raw body,
by the key named in `Github-Public-Key-Identifier`, one of those GitHub publishes at
KEYPORTAL_GITHUB_SCANNING_KEYS_URL. The answer tells GitHub which tokens were keyportal's
(`true_positive`), by the token's SHA-256, never the token itself.

The public keys come from KEYPORTAL_GITHUB_SCANNING_KEYS_FILE when it is set (tests, air-gapped
installs), else from GitHub, cached for a day in the shared cache. A key identifier not among
them makes one fetch at most, and at most one a minute across every server: a flood of made-up
identifiers cannot make keyportal hammer GitHub.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.views.decorators.debug import sensitive_variables

from accounts.access import Actor
from accounts.models import Origin
from apikeys.leaks import key_report_leaked
from apikeys.models import LeakSource, SecretScanningDelivery

log = logging.getLogger(__name__)

ACTOR_LABEL = "GitHub secret scanning"
MAX_BODY_BYTES = 1024 * 1024
MAX_TOKENS = 1000
KEYS_CACHE_KEY = "github-scanning:public-keys"
KEYS_CACHE_SECONDS = 24 * 3600
# Held while a fetch forced by an unknown identifier may not be repeated.
REFETCH_CACHE_KEY = "github-scanning:refetched"
REFETCH_EVERY_SECONDS = 60
# Held for as long after a fetch that failed: requests meanwhile do not wait on GitHub again.
FAILED_CACHE_KEY = "github-scanning:fetch-failed"
FETCH_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
IDENTIFIER_MAX_LENGTH = 200
SIGNATURE_MAX_LENGTH = 1000
_FIELD_MAX_LENGTH = {"token": 1000, "type": 200, "url": 2000, "source": 200}
# https://github.com/<owner>/<repository>/blob/<commit>/<path>, as GitHub gives a file's place.
_BLOB_URL = re.compile(
    r"^https://github\.com/(?P<repository>[^/?#]+/[^/?#]+)/blob/"
    r"(?P<commit>[0-9a-fA-F]{7,64})/(?P<file>[^?#]+)"
)


class Refused(Exception):
    """The request is answered with an error: `status`, `code` and `message`."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class SignatureRefused(Refused):
    status = 401
    code = "invalid_signature"


class BatchInvalid(Refused):
    status = 422
    code = "invalid_request"


class BatchUnreadable(Refused):
    status = 400
    code = "bad_request"


class BatchTooLarge(Refused):
    status = 413
    code = "too_large"


class BatchReplayed(Refused):
    status = 409
    code = "replayed"


class KeysUnavailable(Refused):
    status = 503
    code = "unavailable"


@dataclass(frozen=True)
class Match:
    """One token of a batch, as GitHub reported it."""

    token: str
    type: str
    url: str
    source: str


# --- GitHub's public keys ---------------------------------------------------------------------


def keys_from_document(document: object) -> dict[str, str]:
    """Return {key identifier: PEM} from GitHub's document of public keys, skipping entries
    that are not well formed."""
    entries = document.get("public_keys") if isinstance(document, dict) else None
    keys = {}
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        identifier, pem = entry.get("key_identifier"), entry.get("key")
        if isinstance(identifier, str) and isinstance(pem, str) and identifier and pem:
            keys[identifier] = pem
    return keys


def fetch_keys() -> dict[str, str]:
    """Fetch GitHub's public keys; raise KeysUnavailable when they cannot be had."""
    url = settings.KEYPORTAL_GITHUB_SCANNING_KEYS_URL
    try:
        response = httpx.get(url, timeout=FETCH_TIMEOUT, headers={"Accept": "application/json"})
        response.raise_for_status()
        keys = keys_from_document(response.json())
    except (httpx.HTTPError, ValueError) as error:
        log.warning("Cannot fetch GitHub's secret scanning keys from %s: %s", url, error)
        raise KeysUnavailable("GitHub's signing keys cannot be fetched; try again later.") from None
    if not keys:
        log.warning("GitHub's secret scanning keys document at %s lists no key.", url)
        raise KeysUnavailable("GitHub's signing keys cannot be fetched; try again later.")
    return keys


def _keys_from_file(path: str) -> dict[str, str]:
    try:
        return keys_from_document(json.loads(Path(path).read_text()))
    except (OSError, ValueError) as error:
        log.error("Cannot read KEYPORTAL_GITHUB_SCANNING_KEYS_FILE %s: %s", path, error)
        raise KeysUnavailable("The signing keys cannot be read.") from None


def public_key_pem(identifier: str) -> str | None:
    """Return the PEM of GitHub's public key `identifier`, or None if GitHub has no such key."""
    if settings.KEYPORTAL_GITHUB_SCANNING_KEYS_FILE:
        return _keys_from_file(settings.KEYPORTAL_GITHUB_SCANNING_KEYS_FILE).get(identifier)
    keys = cache.get(KEYS_CACHE_KEY)
    if keys is not None:
        if identifier in keys:
            return keys[identifier]
        # Not among the cached keys (GitHub may have added one): fetch them again, unless that
        # was done less than a minute ago, on any server.
        if not cache.add(REFETCH_CACHE_KEY, True, REFETCH_EVERY_SECONDS):
            # Asked less than a minute ago: not known yet, which GitHub should try again.
            raise KeysUnavailable("GitHub's signing keys are being refreshed; try again later.")
    elif cache.get(FAILED_CACHE_KEY):
        raise KeysUnavailable("GitHub's signing keys cannot be fetched; try again later.")
    try:
        fetched = fetch_keys()
    except KeysUnavailable:
        cache.set(FAILED_CACHE_KEY, True, REFETCH_EVERY_SECONDS)
        raise
    cache.set(KEYS_CACHE_KEY, fetched, KEYS_CACHE_SECONDS)
    return fetched.get(identifier)


# --- the signature ------------------------------------------------------------------------------


def _signature_bytes(signature: str) -> bytes:
    if not signature or len(signature) > SIGNATURE_MAX_LENGTH:
        raise SignatureRefused("The request is not signed by GitHub.")
    try:
        return base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureRefused("The signature is not valid base64.") from None


def verify_signature(*, body: bytes, identifier: str, signature: str) -> str:
    """Check that GitHub's key `identifier` signed `body`; return the digest that identifies
    the signature, or raise SignatureRefused.

    ECDSA signatures are malleable: (r, s) and (r, n - s) both verify. The digest is taken of
    the signature in its one low-s form, so the same batch signed once is recognised however
    its signature is re-encoded.
    """
    if not identifier or len(identifier) > IDENTIFIER_MAX_LENGTH:
        raise SignatureRefused("The request is not signed by GitHub.")
    raw = _signature_bytes(signature)
    try:
        r, s = decode_dss_signature(raw)
    except ValueError:
        # Not even the shape of a signature: refused before GitHub's keys are looked up.
        raise SignatureRefused("The signature is not a DER-encoded ECDSA signature.") from None
    pem = public_key_pem(identifier)
    if pem is None:
        raise SignatureRefused("The request is signed by a key GitHub does not publish.")
    try:
        public_key = load_pem_public_key(pem.encode())
        if not isinstance(public_key, ec.EllipticCurvePublicKey):
            raise TypeError("not an elliptic-curve key")
        public_key.verify(raw, body, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise SignatureRefused("The signature does not match the request.") from None
    except (ValueError, TypeError) as error:
        log.warning("GitHub secret scanning: cannot check a signature by %r: %s", identifier, error)
        raise SignatureRefused("The signature cannot be checked.") from None
    order = _CURVE_ORDERS.get(public_key.curve.name)
    if order is not None:
        s = min(s, order - s)
    return hashlib.sha256(encode_dss_signature(r, s)).hexdigest()


# The order of P-256, the curve GitHub signs with: s and n - s verify alike.
_CURVE_ORDERS = {
    "secp256r1": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
}


# --- the batch ----------------------------------------------------------------------------------


def parse_batch(body: bytes) -> list[Match]:
    """Return the matches a (verified) body holds, or raise BatchUnreadable or BatchInvalid."""
    try:
        items = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BatchUnreadable("Cannot parse request body: it is not JSON.") from None
    if not isinstance(items, list):
        raise BatchInvalid("The body must be a JSON array of matches.")
    if len(items) > MAX_TOKENS:
        raise BatchInvalid(f"At most {MAX_TOKENS} matches in one request.")
    matches = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise BatchInvalid(f"[{index}]: each match must be an object.")
        values = {}
        for field, limit in _FIELD_MAX_LENGTH.items():
            value = item.get(field, "")
            if not isinstance(value, str):
                raise BatchInvalid(f"[{index}].{field}: must be a string.")
            if len(value) > limit:
                raise BatchInvalid(f"[{index}].{field}: at most {limit} characters.")
            if "\x00" in value:
                raise BatchInvalid(f"[{index}].{field}: may not contain NUL characters.")
            values[field] = value
        if not values["token"]:
            raise BatchInvalid(f"[{index}].token: required.")
        matches.append(Match(**values))
    return matches


def github_location(url: str) -> dict[str, str]:
    """Return the repository, file and commit a github.com blob URL names, or {} for any
    other URL (an issue, a gist, a package)."""
    match = _BLOB_URL.match(url)
    if match is None:
        return {}
    return {
        "repository": match["repository"],
        "file": match["file"],
        "commit": match["commit"],
    }


def token_hash(token: str) -> str:
    """Return the SHA-256 of the token, as GitHub's feedback names a token without holding it."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@sensitive_variables("body", "matches", "match")
def batch_receive(*, body: bytes, identifier: str, signature: str, ip: str) -> list[dict]:
    """Verify and act on one batch GitHub sent; return the feedback for each of its matches.

    The signature is checked before anything is read from the body. A batch whose signature
    was seen before is refused (BatchReplayed) and changes nothing. Each token is reported
    leaked (apikeys.leaks), in one transaction for the batch.
    """
    if len(body) > MAX_BODY_BYTES:
        raise BatchTooLarge(f"The body may be at most {MAX_BODY_BYTES // 1024} KiB.")
    signature_digest = verify_signature(body=body, identifier=identifier, signature=signature)
    matches = parse_batch(body)
    actor = Actor(user=None, label=ACTOR_LABEL, origin=Origin.API, ip=ip)
    with transaction.atomic():
        try:
            with transaction.atomic():
                SecretScanningDelivery.objects.create(
                    signature_digest=signature_digest,
                    key_identifier=identifier,
                    tokens=len(matches),
                )
        except IntegrityError:
            raise BatchReplayed("This batch was received before.") from None
        # Keys are locked in one order by every batch, so two batches naming the same keys
        # wait for each other instead of deadlocking; the answer keeps GitHub's order.
        matched: dict[str, bool] = {}
        for match in sorted(matches, key=lambda m: token_hash(m.token)):
            report = {"url": match.url, "source": match.source, "type": match.type}
            report |= github_location(match.url)
            result = key_report_leaked(
                token=match.token, source=LeakSource.GITHUB, report=report, actor=actor
            )
            matched[match.token] = matched.get(match.token, False) or result.outcome.matched
    feedback = [
        {
            "token_hash": token_hash(match.token),
            "token_type": match.type,
            "label": "true_positive" if matched[match.token] else "false_positive",
        }
        for match in matches
    ]
    log.info(
        "GitHub secret scanning: %d matches, %d of them keyportal keys.",
        len(feedback),
        sum(item["label"] == "true_positive" for item in feedback),
    )
    return feedback
