"""Tools the demo data is told with: a clock that dates what the services just wrote, usage
history, in-process API calls with a demo key, and small app bundles.

The demo is made through the product's own services and API, so its audit log is a real one;
only the moment is moved: what a block of calls writes "now" is dated back to when the story
says it happened, keeping the order and spacing of the writes.
"""

from __future__ import annotations

import io
import json
import logging
import random
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import F, Model
from django.http import HttpResponse
from django.test import Client
from django.utils import timezone

from accounts.models import AuditEvent, ServiceAccount, Team
from apikeys.models import ApiKey, DeviceAuthorization, KeyUsage
from projects.models import AppVersion, EnvironmentKey, Secret, SecretVersion

# (model, the moment a write sets to "now", every field that moves with it). A row whose
# moment is at or after the block's start was written by the block; the other fields are
# relative to it (a grace period's end, a login code's expiry).
MOMENTS: tuple[tuple[type[Model], str, tuple[str, ...]], ...] = (
    (AuditEvent, "created_at", ("created_at",)),
    (ApiKey, "created_at", ("created_at",)),
    (ApiKey, "rotated_at", ("rotated_at", "previous_valid_until")),
    (ApiKey, "revoked_at", ("revoked_at",)),
    (ApiKey, "compromised_at", ("compromised_at",)),
    (ServiceAccount, "created_at", ("created_at",)),
    (Team, "created_at", ("created_at",)),
    (EnvironmentKey, "created_at", ("created_at",)),
    (Secret, "created_at", ("created_at",)),
    (Secret, "updated_at", ("updated_at",)),
    (SecretVersion, "created_at", ("created_at",)),
    (AppVersion, "created_at", ("created_at",)),
    (DeviceAuthorization, "created_at", ("created_at", "expires_at")),
)


@dataclass(frozen=True)
class Clock:
    """A block of the story: `shift` is how far back its writes are moved."""

    when: datetime
    shift: timedelta


@contextmanager
def backdated(when: datetime) -> Iterator[Clock]:
    """Date what the block writes at the present moment as if it had happened at `when`."""
    start = timezone.now()
    clock = Clock(when=when, shift=max(start - when, timedelta(0)))
    yield clock
    if not clock.shift:
        return
    for model, moment, fields in MOMENTS:
        model.objects.filter(**{f"{moment}__gte": start}).update(
            **{field: F(field) - clock.shift for field in fields}
        )


# Usage --------------------------------------------------------------------------------------

USAGE_DAYS = 30


def usage_history(
    api_key: ApiKey, *, daily: int, until: datetime, now: datetime
) -> tuple[list[KeyUsage], datetime]:
    """Return a month of daily counts around `daily` requests a day for the key, up to `until`
    (when it stopped working, or now), and the moment it was last used.

    Counts vary from day to day and drop at weekends for people's keys, the same way on every
    run (the key's name seeds them).
    """
    rng = random.Random(f"{api_key.organization_id}/{api_key.kind}/{api_key.name}")
    last_used = max(until - timedelta(minutes=rng.randint(3, 180)), api_key.created_at)
    first = max(api_key.created_at.date(), (now - timedelta(days=USAGE_DAYS - 1)).date())
    weekend = 0.25 if api_key.kind == "user" else 0.9
    rows = []
    day = first
    while day <= last_used.date():
        factor = weekend if day.weekday() >= 5 else 1.0
        count = round(daily * factor * rng.uniform(0.6, 1.4))
        if count:
            rows.append(KeyUsage(api_key=api_key, day=day, count=count))
        day += timedelta(days=1)
    return rows, last_used


def usage_write(histories: list[tuple[ApiKey, list[KeyUsage], datetime]]) -> int:
    """Store the histories (rows already there are kept) and each key's last use; return rows."""
    rows = [row for _key, key_rows, _last in histories for row in key_rows]
    KeyUsage.objects.bulk_create(rows, ignore_conflicts=True)
    for api_key, _rows, last_used in histories:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=last_used)
    return len(rows)


# The API, in process ---------------------------------------------------------------------


class DemoError(Exception):
    """A call the demo makes was not answered as the story expects."""


def _host() -> str:
    for host in settings.ALLOWED_HOSTS:
        if host and not host.startswith(".") and "*" not in host:
            return host
    return "localhost"


class DemoApi:
    """Call keyportal's REST API in this process with a demo key, as a program would."""

    def __init__(self) -> None:
        self.client = Client(HTTP_HOST=_host())

    def call(
        self,
        token: str,
        method: str,
        path: str,
        *,
        ip: str,
        body: dict | None = None,
        upload: SimpleUploadedFile | None = None,
        expect: int,
    ) -> dict:
        """Send one request with the key and return its JSON answer; raise DemoError unless
        the status is `expect`."""
        headers = {"Authorization": f"Bearer {token}"}
        url = f"/api/v1{path}"
        # Over HTTPS, as a production deployment (which redirects plain HTTP) answers.
        if upload is not None:
            response = self.client.post(
                url, {"bundle": upload}, headers=headers, secure=True, REMOTE_ADDR=ip
            )
        else:
            response = self.client.generic(
                method,
                url,
                json.dumps(body or {}),
                content_type="application/json",
                headers=headers,
                secure=True,
                REMOTE_ADDR=ip,
            )
        return _answer(response, method, path, expect)


def _answer(response: HttpResponse, method: str, path: str, expect: int) -> dict:
    if response.status_code != expect:
        raise DemoError(
            f"{method} {path} answered {response.status_code}, not {expect}: "
            f"{response.content[:300].decode(errors='replace')}"
        )
    return json.loads(response.content or b"{}")


@contextmanager
def quiet(logger: str) -> Iterator[None]:
    """Leave out the logger's warnings during the block (an answer the story expects)."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


# App bundles --------------------------------------------------------------------------------


def bundle(slug: str, version: int) -> bytes:
    """Return a small .tar.gz of a static app, its version written inside."""
    files = {
        "index.html": (
            f"<!doctype html>\n<title>{slug}</title>\n<h1>{slug} v{version}</h1>\n"
            '<script src="app.js"></script>\n'
        ),
        "app.js": f'document.title += " (v{version})";\n',
        "manifest.json": json.dumps({"name": slug, "version": version}, indent=2) + "\n",
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{slug}/{name}")
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 1_700_000_000 + version * 86_400
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def bundle_upload(slug: str, version: int) -> SimpleUploadedFile:
    """Return the bundle as a file the API's publish route accepts."""
    return SimpleUploadedFile(
        f"{slug}-v{version}.tar.gz", bundle(slug, version), content_type="application/gzip"
    )
