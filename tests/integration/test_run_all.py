"""`scripts/run-all` (what `make run` runs): web server, worker and scheduler start together
and stop together, on Ctrl-C or when one of them dies, leaving no process behind.

Each test runs it over a scratch database on a free port, as a separate process (Linux: the
process tree is read from /proc).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.conftest import (
    HOST,
    ROOT,
    free_port,
    run_python,
    scratch_database,
    scratch_env,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)"),
]


def _stat(pid: int) -> tuple[int, str] | None:
    """Return (parent pid, state) of a process, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text.rpartition(")")[2].split()
    return int(fields[1]), fields[0]


def descendants(pid: int) -> set[int]:
    """Return every process below `pid`."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))):
            parents[int(entry.name)] = stat[0]
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[1] != "Z"


def health(port: int) -> int | None:
    with contextlib.suppress(OSError):
        conn = http.client.HTTPConnection(HOST, port, timeout=2)
        try:
            conn.request("GET", "/api/v1/health")
            return conn.getresponse().status
        finally:
            conn.close()
    return None


# What the task worker and the scheduler print once they are up, with run-all's prefix.
STARTED_LINES = ("worker    | Starting worker", "scheduler | Starting scheduler")


@dataclass
class RunAll:
    process: subprocess.Popen
    port: int
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_until_up(self, timeout: float = 30) -> set[int]:
        """Wait for the health check and all three processes; return every process below."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"run-all exited early:\n{self.output()}"
            below = descendants(self.process.pid)
            # Each process's own first line, not run-all's "started worker (pid ...)": the worker
            # and the scheduler set Django up before they say so, and may be slower than gunicorn.
            started = all(line in self.output() for line in STARTED_LINES)
            if health(self.port) == 200 and started and len(below) >= 3:
                return below
            time.sleep(0.2)
        pytest.fail(f"run-all did not come up within {timeout:.0f} s:\n{self.output()}")

    def child(self, name: str) -> int:
        """Return the pid of one of its three processes, from its own log line."""
        for line in self.output().splitlines():
            if line.startswith("run-all") and f"started {name} (pid " in line:
                return int(line.rpartition("pid ")[2].rstrip(")"))
        raise AssertionError(f"no {name} in:\n{self.output()}")


@pytest.fixture
def run_all(tmp_path) -> Iterator[RunAll]:
    """Start scripts/run-all over a migrated scratch database; kill what is left at the end."""
    with scratch_database(tmp_path) as database_url:
        env = scratch_env(tmp_path, database_url, KEYPORTAL_EMAIL_FILE_PATH=str(tmp_path / "mail"))
        run_python(env, "manage.py", "migrate", "--noinput", "--verbosity", "0", timeout=120)
        port = free_port()
        log = tmp_path / "run-all.log"
        with log.open("wb") as out:
            process = subprocess.Popen(  # noqa: S603 (this interpreter, the script under test)
                [sys.executable, "scripts/run-all", "--bind", f"{HOST}:{port}"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        below: set[int] = set()
        try:
            runner = RunAll(process, port, log)
            below = runner.wait_until_up()
            yield runner
        finally:
            for pid in below | {process.pid}:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            process.wait(timeout=10)


def test_ctrl_c_stops_web_worker_and_scheduler(run_all):
    """Up, it answers the health check with the worker and scheduler beside it; Ctrl-C stops
    all three (gunicorn's workers included) and exits 0."""
    below = descendants(run_all.process.pid)
    children = {name: run_all.child(name) for name in ("web", "worker", "scheduler")}
    assert set(children.values()) <= below
    # gunicorn's master and its worker (one, threaded, without REDIS_URL: keyportal/gunicorn.
    # conf.py), the task worker, the scheduler
    assert len(below) >= 4

    run_all.process.send_signal(signal.SIGINT)
    assert run_all.process.wait(timeout=30) == 0, run_all.output()
    assert [pid for pid in below if alive(pid)] == []
    assert health(run_all.port) is None
    output = run_all.output()
    assert all(line in output for line in STARTED_LINES)
    assert "web       | " in output
    assert output.rstrip().endswith("run-all   | stopped")


def test_one_process_dying_stops_the_others(run_all):
    """When the worker dies, run-all stops the web server and the scheduler and fails."""
    below = descendants(run_all.process.pid)
    os.kill(run_all.child("worker"), signal.SIGKILL)
    assert run_all.process.wait(timeout=30) != 0, run_all.output()
    assert [pid for pid in below if alive(pid)] == []
    assert "worker exited with status -9" in run_all.output()
