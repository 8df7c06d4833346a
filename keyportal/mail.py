"""Email on the worker: services render a template and enqueue it; `deliver_mail` sends it.

A request never waits for the mail server, and a mail server that is down does not lose the
mail: `deliver_mail` tries again later (after 1, 2, 4, 8 minutes), logging each failure, and
gives up loudly after MAIL_ATTEMPTS. The body is rendered when the mail is enqueued, from a
template, as Django's password-reset mail is, so the task's arguments are plain text.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.core.mail import send_mail
from django.db import transaction
from django.tasks import default_task_backend, task
from django.template.loader import render_to_string
from django.utils import timezone

log = logging.getLogger(__name__)

MAIL_ATTEMPTS = 5


def enqueue_mail(
    *, subject: str, template: str, context: dict[str, Any], recipients: Iterable[str]
) -> None:
    """Render `template` with `context` and send it to each recipient (one mail each, so no
    address sees another), once the current transaction commits; nothing if it rolls back."""
    body = render_to_string(template, context)
    for recipient in sorted(set(recipients)):
        transaction.on_commit(
            lambda to=recipient: deliver_mail.enqueue(subject=subject, body=body, to=to)
        )


@task()
def deliver_mail(*, subject: str, body: str, to: str, attempt: int = 1):
    """Send one mail; on failure, enqueue the next attempt with a growing delay."""
    try:
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
        if default_task_backend.supports_defer:
            retry = deliver_mail.using(run_after=timezone.now() + delay)
        retry.enqueue(subject=subject, body=body, to=to, attempt=attempt + 1)
