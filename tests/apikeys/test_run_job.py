"""`manage.py run_job`: an operator runs a scheduled job now, as of any moment."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from apikeys import tasks
from apikeys.models import ApiKey, KeyKind, KeyPolicy, KeyStatus
from keyportal.jobs import JOBS
from tests.apikeys.conftest import operator_key

pytestmark = pytest.mark.django_db


def run_job(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("run_job", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def stale_key(org) -> ApiKey:
    KeyPolicy.objects.create(
        organization=org.organization, kind=KeyKind.ORGANIZATION, disable_unused_after_days=30
    )
    api_key, _ = operator_key(org)
    ApiKey.objects.filter(pk=api_key.pk).update(created_at=timezone.now() - timedelta(days=31))
    return api_key


def test_list_names_every_job():
    """--list names each scheduled job with its one-line summary."""
    out, _ = run_job("--list")
    assert [line.split()[0] for line in out.splitlines()] == [
        path.rpartition(".")[2] for path in JOBS
    ]
    assert "Disable the keys each organization's policy says" in out


def test_runs_a_job_now_and_prints_what_it_did(org):
    """The job runs in the process; its counts come out as JSON."""
    api_key = stale_key(org)
    out, _ = run_job("disable_stale_keys")
    assert json.loads(out) == {"disabled": 1, "failed": 0}
    api_key.refresh_from_db()
    assert api_key.status == KeyStatus.DISABLED


def test_runs_a_job_as_of_another_moment(org):
    """--now moves the moment the job runs as of: a key stale only in 10 days is left alone
    today and disabled as of then."""
    KeyPolicy.objects.create(
        organization=org.organization, kind=KeyKind.ORGANIZATION, disable_unused_after_days=30
    )
    api_key, _ = operator_key(org)
    ApiKey.objects.filter(pk=api_key.pk).update(created_at=timezone.now() - timedelta(days=21))
    assert json.loads(run_job("disable_stale_keys")[0])["disabled"] == 0
    later = (timezone.now() + timedelta(days=10)).strftime("%Y-%m-%dT%H:%M")
    assert json.loads(run_job("disable_stale_keys", "--now", later)[0])["disabled"] == 1


def test_enqueue_puts_the_job_in_the_queue(org):
    """--enqueue hands the job to the worker (here the tests' immediate backend)."""
    api_key = stale_key(org)
    out, err = run_job("disable_stale_keys", "--enqueue")
    assert out == ""
    assert "Queued disable_stale_keys (task result " in err
    api_key.refresh_from_db()
    assert api_key.status == KeyStatus.DISABLED


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nonsense"], "Name one of the jobs: send_expiry_reminders, disable_stale_keys"),
        ([], "Name one of the jobs"),
        (["housekeeping", "--now", "yesterday"], "--now must be an ISO 8601 date and time"),
    ],
)
def test_bad_input_is_refused(args, message):
    """An unknown job, no job, or a --now that is no date are refused with what to do."""
    with pytest.raises(CommandError, match=message):
        run_job(*args)


def test_a_job_that_fails_in_part_fails_the_command(org, monkeypatch):
    """A job with failed items ends the command in an error naming them."""
    stale_key(org)

    def broken(*args):
        raise RuntimeError("database went away")

    monkeypatch.setattr(tasks, "_disable_stale", broken)
    with pytest.raises(CommandError, match="disable_stale_keys: 1 stale keys were not disabled"):
        run_job("disable_stale_keys")
