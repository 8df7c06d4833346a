"""`keyportal scan`: find keyportal keys in files, offline, as a check or a git pre-commit hook.

A finding is shown by its preview only: the scan never prints a whole key, in any mode.
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import click

from keyportal_cli.client import ApiClient
from keyportal_cli.errors import FAILURE, FOUND, CliError
from keyportal_cli.names import unsafe_character
from keyportal_cli.output import emit_json, plural
from keyportal_cli.session import Session, set_json

# The token format, which this distribution carries and the server imports from it.
from keyportal_cli.tokens import has_token_format, token_candidates, token_kind, token_preview

# Folders of tools and dependencies, skipped while walking a folder (a path named on the command
# line is always scanned).
SKIPPED_FOLDERS = frozenset({".git", "node_modules", ".venv", "venv", "__pycache__"})
MAX_SIZE = 5 * 1024 * 1024
MAX_SIZE_SAID = "5 MiB"
# Git's own test for a binary file: a NUL byte in the first 8 KiB.
BINARY_SNIFF = 8 * 1024
# The longest `location` the leak report takes; longer, or with a control character, is a 422.
LOCATION_MAX_LENGTH = 500


@dataclass(frozen=True)
class Finding:
    """A key with a valid checksum at a line of a file."""

    path: str
    line: int
    token: str = field(repr=False)

    @property
    def preview(self) -> str:
        return token_preview(self.token)

    @property
    def location(self) -> str:
        """Return `path:line` as the leak report takes it: shown safely, the end kept if long."""
        said = "".join("?" if unsafe_character(c) else c for c in f"{self.path}:{self.line}")
        if len(said) > LOCATION_MAX_LENGTH:
            said = "..." + said[-(LOCATION_MAX_LENGTH - 3) :]
        return said

    def as_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "line": self.line,
            "preview": self.preview,
            "kind": token_kind(self.token),
        }


@dataclass
class Scan:
    """What a scan found, and whether it says which files it skipped and why."""

    verbose: bool = False
    findings: list[Finding] = field(default_factory=list)

    def note(self, message: str) -> None:
        if self.verbose:
            click.echo(message, err=True)

    def content(self, path: str, data: bytes) -> None:
        """Record the keys in one file's bytes, unless the file is too large or binary."""
        if len(data) > MAX_SIZE:
            self.note(f"Skipped {path}: larger than {MAX_SIZE_SAID}.")
            return
        if b"\0" in data[:BINARY_SNIFF]:
            self.note(f"Skipped {path}: binary.")
            return
        text = data.decode("utf-8", errors="replace")
        if "sk-" not in text:
            return
        for number, line in enumerate(text.split("\n"), start=1):
            for token in token_candidates(line):
                if has_token_format(token):  # a look-alike with a wrong checksum is no key
                    self.findings.append(Finding(path, number, token))

    def file(self, path: Path) -> None:
        """Scan a file of the working copy; one that cannot be read is a warning."""
        try:
            status = path.stat()
            if not stat.S_ISREG(status.st_mode):  # a pipe or a device could block or never end
                self.note(f"Skipped {path}: not a regular file.")
                return
            if status.st_size > MAX_SIZE:
                self.note(f"Skipped {path}: larger than {MAX_SIZE_SAID}.")
                return
            with path.open("rb") as handle:
                data = handle.read(MAX_SIZE + 1)
        except OSError as exc:
            click.echo(f"Warning: cannot read {path}: {exc.strerror or exc}.", err=True)
            return
        self.content(str(path), data)

    def tree(self, path: Path) -> None:
        """Scan a file, or a folder and everything under it but SKIPPED_FOLDERS and links."""
        if path.is_dir():
            for found in _walk(path):
                self.file(found)
        else:
            self.file(path)

    def staged(self, paths: tuple[Path, ...]) -> None:
        """Scan what git's index holds for each added, copied, modified or renamed file."""
        # Outside a repository `git diff` compares files instead, and refuses --cached obscurely.
        if _run_git("rev-parse", "--git-dir").returncode != 0:
            raise CliError("--staged reads git's index: run it inside a git repository.", FAILURE)
        names = _git(
            "diff", "--cached", "--name-only", "-z", "--diff-filter=ACMR", "--",
            *(str(path) for path in paths),
        )  # fmt: skip
        for raw in names.split(b"\0"):
            if not raw:
                continue
            name = os.fsdecode(raw)
            try:
                # `:name` is the index's version, named from the top of the work tree.
                data = _git("show", f":{name}")
            except CliError as exc:  # a submodule, say: its commit is not a file here
                click.echo(f"Warning: cannot read the staged {name}: {exc.message}", err=True)
                continue
            self.content(name, data)


def _walk(folder: Path) -> Iterator[Path]:
    """Yield the files under `folder` in name order, skipping SKIPPED_FOLDERS and links."""
    try:
        with os.scandir(folder) as scanned:
            entries = sorted(scanned, key=lambda entry: entry.name)
    except OSError as exc:
        click.echo(f"Warning: cannot read {folder}: {exc.strerror or exc}.", err=True)
        return
    for entry in entries:
        if entry.is_symlink():
            continue  # its target is scanned where it lives, if it is under a named path
        path = folder / entry.name
        if entry.is_dir():
            if entry.name not in SKIPPED_FOLDERS:
                yield from _walk(path)
        elif entry.is_file():
            yield path


def _run_git(*args: str) -> subprocess.CompletedProcess[bytes]:
    """Return how `git ARGS...` ended, its output captured."""
    try:
        return subprocess.run(  # noqa: S603 (git, with arguments as a list: no shell)
            ["git", *args],  # noqa: S607 (git from PATH, as a hook itself runs it)
            capture_output=True,
            check=False,
        )
    except FileNotFoundError:
        raise CliError("--staged needs git, which is not installed.", FAILURE) from None


def _git(*args: str) -> bytes:
    """Return the output of `git ARGS...`; a failure of git is a CliError."""
    done = _run_git(*args)
    if done.returncode != 0:
        said = os.fsdecode(done.stderr).strip().splitlines()
        raise CliError(f"git {args[0]} failed: {said[0] if said else done.returncode}", FAILURE)
    return done.stdout


def _report(session: Session, findings: list[Finding]) -> None:
    """Send each key found, once, to the server's leak report; no key authenticates it."""
    session.stored(strict=False)  # only the address is wanted: a broken file counts as none
    first: dict[str, Finding] = {}
    for finding in findings:
        first.setdefault(finding.token, finding)
    with ApiClient(session.url()) as client:
        for finding in first.values():
            response = client.send(
                "POST",
                "keys/leaked",
                json={"token": finding.token, "location": finding.location},
            )
            if not response.is_success:
                raise client.fail(response)
            click.echo(f"reported {finding.preview}", err=True)


@click.command("scan")
@click.argument(
    "paths", nargs=-1, type=click.Path(exists=True, path_type=Path), metavar="[PATH]..."
)
@click.option(
    "--staged",
    is_flag=True,
    help="Scan the files staged for the next commit, as git's index holds them (under PATHs "
    "when given), instead of the working copy. For a pre-commit hook.",
)
@click.option(
    "--report",
    is_flag=True,
    help="Report each key found to the server as leaked, and the server marks it compromised "
    "(no API key needed: holding the key is the proof).",
)
@click.option("--verbose", "-v", is_flag=True, help="Name each file skipped, and why.")
@click.option(
    "--json",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=set_json,
    help="Print the findings as a JSON list.",
)
@click.pass_obj
def scan(
    session: Session, paths: tuple[Path, ...], staged: bool, report: bool, verbose: bool
) -> None:
    """Find keyportal keys in files, or in what is staged for the next commit.

    PATHs are files or folders; without one, the current folder. Only a key with a valid
    checksum counts. Each is printed as `path:line: preview`, never whole, and the exit code
    is 8 when one is found. Folders are walked without .git, node_modules, .venv, venv,
    __pycache__ and links; binary files and files over 5 MiB are skipped.
    """
    found = Scan(verbose=verbose)
    if staged:
        found.staged(paths)
    else:
        for path in paths or (Path(),):
            found.tree(path)
    findings = found.findings
    if session.as_json:
        emit_json([finding.as_json() for finding in findings])
    else:
        for finding in findings:
            click.echo(f"{finding.path}:{finding.line}: {finding.preview}")
    if not findings:
        click.echo("No keyportal keys found.", err=True)
        return
    files = len({finding.path for finding in findings})
    click.echo(
        f"{plural(len(findings), 'keyportal key')} found in {plural(files, 'file')}.", err=True
    )
    if report:
        _report(session, findings)
    raise click.exceptions.Exit(FOUND)
