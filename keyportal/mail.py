"""Email on the worker: services render a template and enqueue it; `deliver_mail` sends it.

A request never waits for the mail server, and a mail server that is down does not lose the
mail: `deliver_mail` tries again later (after 1, 2, 4, 8 minutes), logging each failure, and
gives up loudly after MAIL_ATTEMPTS. The body is rendered when the mail is enqueued, from a
template, as Django's password-reset mail is, and sealed with the master key
(KEYPORTAL_SECRETS_KEY, projects/crypto.py): the queue is a database table, kept for days, and
a body may hold a link that works once (an invitation, a sign-up). A reader of the database or
of a backup without the master key cannot open it.

With the database backend the mail is enqueued in the caller's transaction, so it is queued if
and only if the change it tells of is committed; with any other backend, once that commits.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.core.mail import send_mail
from django.db import transaction
from django.tasks import task
from django.template.loader import render_to_string
from django.utils import timezone
from django_tasks_db import DatabaseBackend

from projects.crypto import master

log = logging.getLogger(__name__)

MAIL_ATTEMPTS = 5


def enqueue_mail(
    *, subject: str, template: str, context: dict[str, Any], recipients: Iterable[str]
) -> None:
    """Render `template` with `context` and send it, sealed, to each recipient (one mail each, so
    no address sees another): queued with the caller's change, nothing if that rolls back."""
    sealed = master().encrypt(render_to_string(template, context).encode()).decode()
    for recipient in sorted(set(recipients)):
        if isinstance(deliver_mail.get_backend(), DatabaseBackend):
            deliver_mail.enqueue(subject=subject, sealed=sealed, to=recipient)
        else:
            transaction.on_commit(
                lambda to=recipient: deliver_mail.enqueue(subject=subject, sealed=sealed, to=to)
            )


@task()
def deliver_mail(*, subject: str, sealed: str, to: str, attempt: int = 1):
    """Send one mail; on failure, enqueue the next attempt with a growing delay."""
    try:
        body = master().decrypt(sealed.encode()).decode()
        send_mail(subject=subject, message=body, from_email=None, recipient_list=[to])
    except Exception:
        if attempt >= MAIL_ATTEMPTS:
            log.exception("Giving up on mail %r to %s after %d attempts.", subject, to, attempt)
            raise
        delay = timedelta(minutes=2 ** (attempt - 1))
        log.warning(
            "Mail %r to %s failed (attempt %d of %d); trying again in %s.",
            subject,
            to,
            attempt,
            MAIL_ATTEMPTS,
            delay,
            exc_info=True,
        )
        retry = deliver_mail
        if deliver_mail.get_backend().supports_defer:
            retry = deliver_mail.using(run_after=timezone.now() + delay)
        retry.enqueue(subject=subject, sealed=sealed, to=to, attempt=attempt + 1)
