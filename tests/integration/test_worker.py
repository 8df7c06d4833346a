"""The jobs on the real worker: `manage.py db_worker` over a scratch database, time moved.

The data is written by a process of its own (tests/integration/worker_scenario.py), the jobs
are put in the database queue by `manage.py run_job --enqueue --now ...` as of 30 days from
now, and `manage.py db_worker --batch` runs them, and the mail they enqueue, to the end. Mail
goes to files (KEYPORTAL_EMAIL_FILE_PATH). A second round changes and sends nothing more.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes
from email.header import decode_header, make_header
from pathlib import Path

import pytest
from django.utils import timezone

from tests.integration.conftest import run_python, scratch_database, scratch_env

pytestmark = pytest.mark.integration

MOVED = (timezone.now() + timedelta(days=30)).replace(microsecond=0).isoformat()
SEPARATOR = b"\n" + b"-" * 79 + b"\n"


class Scratch:
    """The scratch database's environment, and the commands run in it."""

    def __init__(self, env: dict[str, str], mail: Path):
        self.env = env
        self.mail = mail

    def run(self, *args: str, timeout: float = 120) -> str:
        return run_python(self.env, *args, timeout=timeout)

    def scenario(self, *args: str):
        return json.loads(self.run("-m", "tests.integration.worker_scenario", *args))

    def enqueue(self, job: str) -> None:
        self.run("manage.py", "run_job", job, "--now", MOVED, "--enqueue")

    def work(self) -> None:
        """Run the worker until the queue is empty, mail tasks included."""
        self.run(
            "manage.py", "db_worker", "--batch", "--no-startup-delay", "--no-reload", timeout=180
        )

    def mails(self) -> list[tuple[str, str, str]]:
        """Return (to, subject, body) of every mail written, sorted."""
        found = []
        for path in sorted(self.mail.glob("*.log")) if self.mail.exists() else []:
            for raw in path.read_bytes().split(SEPARATOR):
                if raw.strip():
                    message = message_from_bytes(raw.strip() + b"\n")
                    subject = str(make_header(decode_header(message["Subject"])))
                    body = message.get_payload(decode=True).decode()
                    found.append((message["To"], subject, body))
        return sorted(found)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Iterator[Scratch]:
    """Migrate a scratch database with mail written to files; yield its environment."""
    folder = tmp_path_factory.mktemp("worker")
    with scratch_database(folder) as database_url:
        env = scratch_env(
            folder,
            database_url,
            KEYPORTAL_EMAIL_FILE_PATH=str(folder / "mail"),
            KEYPORTAL_BASE_URL="https://keys.example.com",
        )
        scratch = Scratch(env, folder / "mail")
        scratch.run("manage.py", "migrate", "--noinput", "--verbosity", "0")
        yield scratch


def test_reminders_and_stale_keys_on_the_real_worker(scratch):
    """Enqueued as of 30 days on, the worker reminds of the expiring key and disables the
    stale one (audited, mailed), leaves the used key alone, and records every task as
    successful; run again, it sends and changes nothing more."""
    ids = scratch.scenario("build", MOVED)
    scratch.enqueue("send_expiry_reminders")
    scratch.enqueue("disable_stale_keys")
    scratch.work()

    mails = scratch.mails()
    people = ["admin@acme.test", "owner@acme.test"]
    assert [(to, subject) for to, subject, _ in mails] == sorted(
        [(to, "API key “expiring” in Acme expires in 3 days") for to in people]
        + [(to, "API key “stale” in Acme was disabled") for to in people]
    )
    bodies = {subject: body for _, subject, body in mails}
    reminder = bodies["API key “expiring” in Acme expires in 3 days"]
    assert f"https://keys.example.com/o/acme/api-keys/{ids['expiring']}/" in reminder
    disabled = bodies["API key “stale” in Acme was disabled"]
    assert "Never used in the 100 days since it was made (policy: 90 days)." in disabled

    state = scratch.scenario("inspect")
    assert state["status"] == {"expiring": "active", "stale": "disabled", "used": "active"}
    assert state["notices"] == [["expiring", "expiry-7d"]]
    assert state["disables"] == [
        {
            "key": f"stale ({state['disables'][0]['preview']})",
            "origin": "worker",
            "actor": "keyportal worker (stale-key policy)",
            "name": "stale",
            "preview": state["disables"][0]["preview"],
            "kind": "org",
            "changed": ["status"],
            "status": "disabled",
            "reason": "Never used in the 100 days since it was made (policy: 90 days)",
        }
    ]
    assert state["tasks"] == sorted(
        [["send_expiry_reminders", "SUCCESSFUL"], ["disable_stale_keys", "SUCCESSFUL"]]
        + [["deliver_mail", "SUCCESSFUL"]] * 4
    )

    # The scheduler firing again, or a second scheduler: nothing more happens.
    scratch.enqueue("send_expiry_reminders")
    scratch.enqueue("disable_stale_keys")
    scratch.work()
    assert scratch.mails() == mails
    again = scratch.scenario("inspect")
    assert again["status"] == state["status"]
    assert again["disables"] == state["disables"]
    assert again["notices"] == state["notices"]
    assert [status for _, status in again["tasks"]] == ["SUCCESSFUL"] * 8


def test_crontask_schedules_every_job():
    """`manage.py crontask` loads each app's tasks module and schedules exactly the jobs
    `run_job` knows, each enqueuing its task, on its UTC schedule (without starting)."""
    from crontask import scheduler
    from crontask.management.commands.crontask import Command

    from keyportal.jobs import jobs

    Command(stdout=open(os.devnull, "w")).load_tasks({})  # noqa: SIM115 (closed at exit)
    scheduled = {
        job.name: job
        for job in scheduler.get_jobs()
        if job.func.__self__.func.__module__.partition(".")[0] in {"accounts", "apikeys"}
    }
    assert set(scheduled) == set(jobs())
    for name, job in scheduled.items():
        assert job.func == jobs()[name].enqueue
        assert str(job.trigger.timezone) == "UTC"
    schedule = {name: str(job.trigger) for name, job in scheduled.items()}
    assert "minute='7'" in schedule["send_expiry_reminders"]
    assert "hour='*'" in schedule["send_expiry_reminders"]
    assert "hour='3', minute='17'" in schedule["disable_stale_keys"]
