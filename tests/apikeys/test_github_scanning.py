"""GitHub secret scanning: signed batches of tokens found in public code, and GitHub's keys."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from datetime import timedelta

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from django.core import mail
from django.test import Client
from django.utils import timezone

from accounts.access import Actor
from accounts.models import AuditEvent, AuditEventType, Origin
from apikeys import github_scanning
from apikeys.github_scanning import github_location
from apikeys.models import ApiKey, KeyKind, LeakSource, SecretScanningDelivery
from apikeys.services import api_key_revoke, api_key_rotate
from keyportal_cli.tokens import generate_token
from tests.apikeys.conftest import new_key

pytestmark = pytest.mark.django_db

URL = "/api/v1/secret-scanning/github"
KEY_ID = "90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a"
OTHER_KEY_ID = "bcb53661c06b4728e59d897fb6165d5c9cda0fd9cdf9d09ead458168deb7518c"
BLOB = "https://github.com/octocat/Hello-World/blob/12345600b9cbe38a219f39a9941c9319b600c002"
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

SIGNER = ec.generate_private_key(ec.SECP256R1())
STRANGER = ec.generate_private_key(ec.SECP256R1())


def pem(private_key) -> str:
    return (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def keys_document(**keys) -> dict:
    return {
        "public_keys": [
            {"key_identifier": identifier, "key": pem(key), "is_current": True}
            for identifier, key in keys.items()
        ]
    }


def sign(body: bytes, key=SIGNER) -> str:
    return base64.b64encode(key.sign(body, ec.ECDSA(hashes.SHA256()))).decode()


def match(token: str, url: str = f"{BLOB}/config/settings.py", **extra) -> dict:
    return {"token": token, "type": "keyportal_api_key", "url": url, "source": "content", **extra}


def send(body, *, identifier: str | None = KEY_ID, signature: str | None = None, **extra):
    """POST `body` (bytes, or JSON made of it) to the endpoint, signed by SIGNER unless told."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {}
    if identifier is not None:
        headers["Github-Public-Key-Identifier"] = identifier
    headers["Github-Public-Key-Signature"] = sign(data) if signature is None else signature
    if signature == "":
        del headers["Github-Public-Key-Signature"]
    return Client().post(URL, data=data, content_type="application/json", headers=headers, **extra)


@pytest.fixture(autouse=True)
def keys_file(tmp_path, settings):
    """GitHub's keys from a file, as in an air-gapped install: no test reaches the network."""
    path = tmp_path / "github-keys.json"
    path.write_text(json.dumps(keys_document(**{KEY_ID: SIGNER})))
    settings.KEYPORTAL_GITHUB_SCANNING_KEYS_FILE = str(path)
    return path


def written() -> tuple:
    """Return every row a batch may change: keys, history, deliveries."""
    return (
        list(ApiKey.objects.order_by("pk").values_list()),
        AuditEvent.objects.count(),
        SecretScanningDelivery.objects.count(),
    )


# --- github_location ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            f"{BLOB}/foo/bar.txt",
            {
                "repository": "octocat/Hello-World",
                "file": "foo/bar.txt",
                "commit": "12345600b9cbe38a219f39a9941c9319b600c002",
            },
        ),
        (
            f"{BLOB}/deep/dir/app.env#L12",
            {
                "repository": "octocat/Hello-World",
                "file": "deep/dir/app.env",
                "commit": "12345600b9cbe38a219f39a9941c9319b600c002",
            },
        ),
        ("https://github.com/octocat/Hello-World/issues/3#issuecomment-1", {}),
        ("https://gist.github.com/octocat/abc", {}),
        ("https://www.npmjs.com/package/left-pad", {}),
        ("http://github.com/o/r/blob/1234567/a.py", {}),
        ("https://github.com.evil.example/o/r/blob/1234567/a.py", {}),
        ("https://github.com/o/r/blob/main/a.py", {}),
        ("", {}),
    ],
)
def test_github_location(url, expected):
    """A github.com blob URL gives its repository, file and commit; anything else nothing."""
    assert github_location(url) == expected


# --- a signed batch -----------------------------------------------------------------------------


def test_a_signed_batch_stops_our_keys_and_labels_each_token(org):
    """Our key is compromised with GitHub's report; the answer labels each token by its hash,
    never echoing one."""
    api_key, token = new_key(org, KeyKind.ORGANIZATION)
    unknown, other = generate_token("org"), "ghp_" + "d" * 36
    body = [match(token), match(unknown, url="https://gist.github.com/x/1"), match(other)]
    response = send(body)
    assert response.status_code == 200
    assert response.json() == [
        {
            "token_hash": hashlib.sha256(t.encode()).hexdigest(),
            "token_type": "keyportal_api_key",
            "label": label,
        }
        for t, label in (
            (token, "true_positive"),
            (unknown, "false_positive"),
            (other, "false_positive"),
        )
    ]
    for secret in (token, unknown, other):
        assert secret not in response.content.decode()
    api_key.refresh_from_db()
    assert api_key.is_compromised and api_key.is_revoked
    assert api_key.compromised_source == LeakSource.GITHUB
    assert api_key.compromise_report == {
        "url": f"{BLOB}/config/settings.py",
        "source": "content",
        "type": "keyportal_api_key",
        "repository": "octocat/Hello-World",
        "file": "config/settings.py",
        "commit": "12345600b9cbe38a219f39a9941c9319b600c002",
    }
    [event] = AuditEvent.objects.filter(action=AuditEventType.API_KEY_COMPROMISED)
    assert (event.actor_label, event.origin, event.actor_user) == (
        "GitHub secret scanning",
        Origin.API,
        None,
    )
    assert event.label == "API key reported leaked by GitHub secret scanning; revoked"
    [delivery] = SecretScanningDelivery.objects.all()
    assert (delivery.key_identifier, delivery.tokens) == (KEY_ID, 3)


def test_the_mail_is_sent_once_the_batch_commits(org, django_capture_on_commit_callbacks):
    """The owners and admins are told, naming the repository and file, never the token."""
    _, token = new_key(org, KeyKind.ORGANIZATION)
    with django_capture_on_commit_callbacks(execute=True):
        assert send([match(token)]).status_code == 200
    assert sorted(m.to[0] for m in mail.outbox) == sorted([org.owner.email, org.admin.email])
    body = mail.outbox[0].body
    assert "GitHub secret scanning" in body
    assert "Repository: octocat/Hello-World" in body and "File: config/settings.py" in body
    assert token not in body


def test_every_secret_of_ours_is_a_true_positive(org):
    """A revoked key, a compromised one, an old secret in or past its grace period: ours."""
    revoked, revoked_token = new_key(org, KeyKind.ORGANIZATION, name="revoked")
    api_key_revoke(actor=Actor(user=org.owner), api_key=revoked)
    in_grace, old_in_grace = new_key(org, KeyKind.ORGANIZATION, name="in grace")
    api_key_rotate(actor=Actor(user=org.owner), api_key=in_grace, grace="24h")
    past, old_past = new_key(org, KeyKind.ORGANIZATION, name="past")
    api_key_rotate(actor=Actor(user=org.owner), api_key=past, grace="1h")
    ApiKey.objects.filter(pk=past.pk).update(
        previous_valid_until=timezone.now() - timedelta(seconds=1)
    )
    tokens = [revoked_token, old_in_grace, old_past, revoked_token]
    response = send([match(t) for t in tokens])
    assert [item["label"] for item in response.json()] == ["true_positive"] * 4
    in_grace.refresh_from_db()
    assert in_grace.previous_digest is None and not in_grace.is_compromised


def test_a_batch_is_one_transaction(org, monkeypatch):
    """A failure half-way through a batch leaves every key as it was, and the batch can come
    again."""
    first, first_token = new_key(org, KeyKind.ORGANIZATION, name="first")
    _, second_token = new_key(org, KeyKind.ORGANIZATION, name="second")
    body = json.dumps([match(first_token), match(second_token)]).encode()
    real = github_scanning.key_report_leaked
    calls = []

    def failing(**kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("the database went away")
        return real(**kwargs)

    monkeypatch.setattr(github_scanning, "key_report_leaked", failing)
    before = written()
    with pytest.raises(RuntimeError):
        github_scanning.batch_receive(body=body, identifier=KEY_ID, signature=sign(body), ip="")
    assert written() == before
    monkeypatch.setattr(github_scanning, "key_report_leaked", real)
    assert send(body, signature=sign(body)).status_code == 200
    assert ApiKey.objects.get(pk=first.pk).is_compromised


def test_a_replayed_batch_is_refused_and_changes_nothing(org):
    """The same signed batch again, or its signature re-encoded as (r, n - s): 409."""
    _, token = new_key(org, KeyKind.ORGANIZATION)
    body = json.dumps([match(token)]).encode()
    signature = sign(body)
    assert send(body, signature=signature).status_code == 200
    before = written()
    r, s = decode_dss_signature(base64.b64decode(signature))
    flipped = base64.b64encode(encode_dss_signature(r, P256_ORDER - s)).decode()
    for again in (signature, flipped):
        response = send(body, signature=again)
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "replayed"
    assert written() == before


# --- refused batches -----------------------------------------------------------------------------


def _bad(case: str, token: str):
    good = json.dumps([match(token)]).encode()
    cases = {
        "no headers": lambda: send(good, identifier=None, signature=""),
        "no signature": lambda: send(good, signature=""),
        "no identifier": lambda: send(good, identifier=None),
        "empty identifier": lambda: send(good, identifier=""),
        "identifier too long": lambda: send(good, identifier="a" * 201),
        "bad base64": lambda: send(good, signature="not base64!!"),
        "base64, not DER": lambda: send(good, signature=base64.b64encode(b"hello").decode()),
        "signature too long": lambda: send(good, signature="A" * 2000),
        "signature of another body": lambda: send(good, signature=sign(good + b" ")),
        "signature by another key": lambda: send(good, signature=sign(good, STRANGER)),
        "unknown identifier": lambda: send(good, identifier=OTHER_KEY_ID),
        "unsigned, not JSON": lambda: send(b"{nope", signature=sign(b"other")),
        "not JSON": lambda: send(b"{nope"),
        "not UTF-8": lambda: send(b'[{"token": "\xff"}]'),
        "not an array": lambda: send({"token": token}),
        "an item not an object": lambda: send([match(token), "sk-org-x"]),
        "an item without token": lambda: send([match(token), {"type": "t", "url": "u"}]),
        "an empty token": lambda: send([match(token), match("")]),
        "a token not a string": lambda: send([match(token), match(5)]),
        "a url too long": lambda: send([match(token), match(token, url="u" * 2001)]),
        "a NUL in a field": lambda: send([match(token), match(token, source="a\x00b")]),
        "too many tokens": lambda: send([match(token)] * 1001),
        "too large": lambda: send([match(token, padding="p" * (1024 * 1024))]),
    }
    return cases[case]()


BAD_CASES = [
    ("no headers", 401, "invalid_signature"),
    ("no signature", 401, "invalid_signature"),
    ("no identifier", 401, "invalid_signature"),
    ("empty identifier", 401, "invalid_signature"),
    ("identifier too long", 401, "invalid_signature"),
    ("bad base64", 401, "invalid_signature"),
    ("base64, not DER", 401, "invalid_signature"),
    ("signature too long", 401, "invalid_signature"),
    ("signature of another body", 401, "invalid_signature"),
    ("signature by another key", 401, "invalid_signature"),
    ("unknown identifier", 401, "invalid_signature"),
    ("unsigned, not JSON", 401, "invalid_signature"),
    ("not JSON", 400, "bad_request"),
    ("not UTF-8", 400, "bad_request"),
    ("not an array", 422, "invalid_request"),
    ("an item not an object", 422, "invalid_request"),
    ("an item without token", 422, "invalid_request"),
    ("an empty token", 422, "invalid_request"),
    ("a token not a string", 422, "invalid_request"),
    ("a url too long", 422, "invalid_request"),
    ("a NUL in a field", 422, "invalid_request"),
    ("too many tokens", 422, "invalid_request"),
    ("too large", 413, "too_large"),
]


@pytest.mark.parametrize(("case", "status", "code"), BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_a_refused_batch_changes_nothing(org, case, status, code, caplog):
    """Each bad request is a clear error in the API's format, nothing changed, never a 500,
    and the token it carries appears nowhere."""
    caplog.set_level(logging.DEBUG)
    _, token = new_key(org, KeyKind.ORGANIZATION)
    before = written()
    response = _bad(case, token)
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code
    assert written() == before
    assert token not in response.content.decode()
    assert token not in caplog.text


# --- GitHub's keys: fetched, cached, refetched at most once a minute ------------------------------


@pytest.fixture
def github(settings, monkeypatch):
    """Serve GitHub's keys document through httpx.MockTransport; count the fetches."""
    settings.KEYPORTAL_GITHUB_SCANNING_KEYS_FILE = ""
    settings.KEYPORTAL_GITHUB_SCANNING_KEYS_URL = "https://api.github.test/meta/keys"

    class GitHub:
        document = keys_document(**{KEY_ID: SIGNER})
        status = 200
        fetches: list[httpx.Request] = []

        def handler(self, request: httpx.Request) -> httpx.Response:
            self.fetches.append(request)
            return httpx.Response(self.status, json=self.document)

    server = GitHub()
    server.fetches = []
    real_get = httpx.get

    def get(url, **kwargs):
        assert kwargs["timeout"] is not None
        with httpx.Client(transport=httpx.MockTransport(server.handler)) as client:
            return client.get(url, headers=kwargs.get("headers"))

    monkeypatch.setattr(httpx, "get", get)
    yield server
    monkeypatch.setattr(httpx, "get", real_get)


def test_the_keys_are_fetched_once_and_cached(org, github):
    """The first batch fetches GitHub's keys from the setting's URL; later ones use the cache."""
    for _ in range(3):
        assert send([match(generate_token("org"))]).status_code == 200
    assert [str(r.url) for r in github.fetches] == ["https://api.github.test/meta/keys"]


def test_an_unknown_identifier_refetches_at_most_once_a_minute(org, github):
    """A new identifier makes one refetch (still unknown: 401); a flood of made-up ones within
    the minute makes no more, answered 503 with Retry-After (a key GitHub added in that minute
    is not lost: GitHub sends the batch again)."""
    assert send([match("x")]).status_code == 200
    assert send([match("x")], identifier="made-up").status_code == 401
    for _ in range(5):
        response = send([match("x")], identifier="made-up")
        assert response.status_code == 503
        assert response["Retry-After"] == "60"
    assert len(github.fetches) == 2


def test_a_key_github_added_is_found_by_the_refetch(org, github):
    """Signed by a key GitHub published after the cache was filled: refetched, accepted."""
    assert send([match("x")]).status_code == 200
    github.document = keys_document(**{KEY_ID: SIGNER, OTHER_KEY_ID: STRANGER})
    body = json.dumps([match("y")]).encode()
    response = send(body, identifier=OTHER_KEY_ID, signature=sign(body, STRANGER))
    assert response.status_code == 200
    assert len(github.fetches) == 2


@pytest.mark.parametrize(
    ("status", "document"), [(500, {}), (200, {"public_keys": []}), (200, ["nonsense"])]
)
def test_keys_that_cannot_be_had_are_503_and_not_asked_again_at_once(org, github, status, document):
    """GitHub down or answering nonsense: 503 with Retry-After, and the next request within
    the minute does not wait on GitHub again."""
    github.status, github.document = status, document
    for _ in range(3):
        response = send([match("x")])
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "unavailable"
        assert response["Retry-After"] == "60"
    assert len(github.fetches) == 1


def test_a_keys_file_that_cannot_be_read_is_503(org, keys_file):
    """A broken keys file is the operator's problem: 503, never 500."""
    keys_file.write_text("{not json")
    assert send([match("x")]).status_code == 503


def test_keys_from_the_document_skip_bad_entries():
    """Entries without an identifier or a key, or not objects, are skipped."""
    document = {
        "public_keys": [
            {"key_identifier": "a", "key": "PEM-A", "is_current": True},
            {"key_identifier": "", "key": "PEM"},
            {"key": "PEM"},
            "nonsense",
            {"key_identifier": "b", "key": 5},
        ]
    }
    assert github_scanning.keys_from_document(document) == {"a": "PEM-A"}
    assert github_scanning.keys_from_document(["x"]) == {}
