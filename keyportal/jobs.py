"""The scheduled jobs, and the moment each one runs "as of".

Each job is a django.tasks task scheduled by crontask's `@cron` in its app's `tasks` module
(`manage.py crontask` imports them). Every job takes `now`, an ISO 8601 string or None, so
tests and operators can run it as of another time without waiting (`manage.py run_job`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.db.models import QuerySet
from django.dispatch import receiver
from django.tasks import Task, TaskResultStatus
from django.tasks.signals import task_finished
from django.utils import timezone
from django.utils.module_loading import import_string

from keyportal import metrics

# Every scheduled job, by its task's import path; `manage.py run_job` names them by their
# function's name. tests/integration/test_worker.py checks crontask schedules exactly these.
JOBS = (
    "apikeys.tasks.send_expiry_reminders",
    "apikeys.tasks.disable_stale_keys",
    "apikeys.tasks.housekeeping",
    "accounts.tasks.sign_in_housekeeping",
)


def jobs() -> dict[str, Task]:
    """Return every scheduled job by name."""
    loaded = [import_string(path) for path in JOBS]
    return {job.name: job for job in loaded}


def as_of(now: str | None) -> datetime:
    """Return the moment a job runs as of: `now` (ISO 8601; UTC when it names no zone), or the
    present."""
    if now is None:
        return timezone.now()
    moment = datetime.fromisoformat(now)
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=UTC)
    return moment


def utc_text(moment: datetime) -> str:
    """Return the moment as emails and logs write it: "2026-03-01 14:00 UTC"."""
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


class JobIncomplete(Exception):
    """Some items of a job failed (each is logged); the others are done, and the next run
    tries the failed ones again. Raised at the end so the worker records the run as failed."""


def delete_rows(queryset: QuerySet) -> int:
    """Delete the rows (housekeeping) and return how many of the queryset's own model went."""
    _, per_model = queryset.delete()
    return per_model.get(queryset.model._meta.label, 0)


@receiver(task_finished)
def _count_job_result(sender, task_result, **kwargs) -> None:
    """Count a scheduled job's run by the worker, by outcome, for /metrics (when it is on).
    Other tasks (emails) are not counted: the label set stays the four jobs."""
    if not metrics.ENABLED:
        return
    task = task_result.task
    if task.module_path not in JOBS:
        return
    outcome = "successful" if task_result.status == TaskResultStatus.SUCCESSFUL else "failed"
    started, finished = task_result.started_at, task_result.finished_at
    seconds = (finished - started).total_seconds() if started and finished else None
    metrics.job_finished(task.name, outcome, seconds)
