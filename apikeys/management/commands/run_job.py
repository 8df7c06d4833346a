"""Run one scheduled job now, in this process, or put it in the worker's queue."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from keyportal.jobs import JobIncomplete, as_of, jobs


class Command(BaseCommand):
    help = (
        "Run a scheduled job (send_expiry_reminders, disable_stale_keys, housekeeping, "
        "sign_in_housekeeping) now, in this process, and print what it did as JSON. Mail it "
        "sends waits in the queue for `manage.py db_worker`. Safe while the scheduler and "
        "workers run: every job is idempotent."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", nargs="?", help="the job's name (--list shows them)")
        parser.add_argument(
            "--now",
            help="run as of this moment, ISO 8601 (UTC unless it says otherwise), e.g. "
            "2026-03-01T09:00; default: the present",
        )
        parser.add_argument(
            "--enqueue",
            action="store_true",
            help="put the job in the queue for a worker instead of running it here",
        )
        parser.add_argument("--list", action="store_true", help="list the jobs and stop")

    def handle(self, *args, name: str | None, now: str | None, **options) -> None:
        known = jobs()
        if options["list"]:
            for job_name, job in known.items():
                summary = (job.func.__doc__ or "").strip().splitlines()[0]
                self.stdout.write(f"{job_name:<24} {summary}")
            return
        if name not in known:
            raise CommandError(f"Name one of the jobs: {', '.join(known)}.")
        if now is not None:
            try:
                as_of(now)
            except ValueError:
                message = f"--now must be an ISO 8601 date and time, not {now!r}."
                raise CommandError(message) from None
        job = known[name]
        if options["enqueue"]:
            result = job.enqueue(now=now)
            self.stderr.write(f"Queued {name} (task result {result.id}) for the worker.")
            return
        try:
            done = job.call(now=now)
        except JobIncomplete as incomplete:
            raise CommandError(f"{name}: {incomplete} See the log above.") from incomplete
        self.stdout.write(json.dumps(done))
