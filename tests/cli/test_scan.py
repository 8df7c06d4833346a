"""`keyportal scan`: keys in files, offline; --staged for the pre-commit hook; --report.

No database and no server: the scan reads files, and --report talks to an in-memory transport.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import httpx
import pytest
import yaml
from click.testing import CliRunner, Result

from keyportal_cli import credentials
from keyportal_cli.client import USER_AGENT, ApiClient
from keyportal_cli.commands import scan as scan_module
from keyportal_cli.errors import EXIT_CODES, FOUND, NETWORK, RATE_LIMITED
from keyportal_cli.main import cli
from keyportal_cli.tokens import PREFIXES, TOKEN_PATTERN, checksum, generate_token, token_preview
from tests.cli.conftest import assert_never_shown

ROOT = Path(__file__).resolve().parents[2]
DOCS = (ROOT / "docs" / "cli.md").read_text()
SERVER = "https://keys.example.com"


@pytest.fixture
def run(cli_home):
    """Return a function running `keyportal ARGS...` in-process, in the current folder."""

    def invoke(*args: str, env: dict[str, str | None] | None = None) -> Result:
        return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)

    return invoke


@pytest.fixture
def tokens() -> dict[str, str]:
    """Return a new token of every kind."""
    return {kind: generate_token(kind) for kind in PREFIXES}


def broken(token: str) -> str:
    """Return `token` with one character of its secret changed: the checksum no longer fits."""
    at = 15
    return token[:at] + ("A" if token[at] != "A" else "B") + token[at + 1 :]


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def lookalikes(token: str) -> str:
    """Return lines holding strings shaped almost like `token`, none of them a key."""
    body = token[len("sk-org-") :]
    admin = "sk-admin-" + body[:32]
    return "\n".join(
        [
            f"broken = {broken(token)}",
            f"starts like one = sk-org-Z{body}",
            f"other prefix = {admin}{checksum(admin)}",
            f"previews = {token_preview(token)} sk-user-...abcd sk-project-...wxyz",
            f"cut short = {token[:-1]}",
        ]
    )


@pytest.fixture
def tree(tmp_path, monkeypatch, tokens) -> Path:
    """Return a folder, made current, with keys of every kind among look-alikes and skipped places.

    Keys to find: app/settings.py:3 (user), config.env:1 (svc), sub/deeper/notes.md:2 (org),
    two.txt:1 (project, then org again).
    """
    write(tmp_path / "app" / "settings.py", f'DEBUG = True\n\nAPI_KEY = "{tokens["user"]}"\n')
    write(tmp_path / "config.env", f"KEYPORTAL_API_KEY={tokens['svc']}\r\nOTHER=1\r\n")
    write(tmp_path / "sub" / "deeper" / "notes.md", f"# Notes\nuse `{tokens['org']}` here\n")
    write(tmp_path / "two.txt", f"a={tokens['project']} b={tokens['org']}\n")
    write(tmp_path / "lookalikes.txt", lookalikes(tokens["org"]))
    write(tmp_path / "image.bin", b"\x89PNG\r\n\x1a\n\x00\x00" + tokens["user"].encode() + b"\n")
    for skipped in (".git", "node_modules/pkg", ".venv/lib", "venv", "__pycache__"):
        write(tmp_path / skipped / "holds.txt", f"{tokens['svc']}\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


FOUND_IN_TREE = [
    "app/settings.py:3: {user}",
    "config.env:1: {svc}",
    "sub/deeper/notes.md:2: {org}",
    "two.txt:1: {project}",
    "two.txt:1: {org}",
]


def expected(lines: list[str], tokens: dict[str, str]) -> list[str]:
    previews = {kind: token_preview(token) for kind, token in tokens.items()}
    return [line.format(**previews) for line in lines]


def test_finds_keys_of_every_kind_by_preview_only(run, tree, tokens):
    """One line per key, in name order; look-alikes, binary files and tool folders are left out."""
    result = run("scan")

    assert result.exit_code == FOUND == 8
    assert result.stdout.splitlines() == expected(FOUND_IN_TREE, tokens)
    assert result.stderr == "5 keyportal keys found in 4 files.\n"
    assert_never_shown(result, *tokens.values())


def test_paths_may_be_files_and_folders(run, tree, tokens):
    """A named folder is walked, a named file is read, even inside a folder a walk skips."""
    result = run("scan", "sub", "config.env", "node_modules/pkg/holds.txt", "lookalikes.txt")

    assert result.exit_code == FOUND
    assert result.stdout.splitlines() == [
        f"sub/deeper/notes.md:2: {token_preview(tokens['org'])}",
        f"config.env:1: {token_preview(tokens['svc'])}",
        f"node_modules/pkg/holds.txt:1: {token_preview(tokens['svc'])}",
    ]
    assert result.stderr == "3 keyportal keys found in 3 files.\n"


def test_nothing_found_is_exit_0(run, tmp_path, monkeypatch, tokens):
    """Only look-alikes, and keys where the walk does not go: nothing found, exit 0."""
    write(tmp_path / "lookalikes.txt", lookalikes(tokens["org"]))
    write(tmp_path / ".git" / "config", tokens["org"])
    write(tmp_path / "photo.bin", b"\x00" + tokens["org"].encode())
    monkeypatch.chdir(tmp_path)

    result = run("scan")

    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr == "No keyportal keys found.\n"


def test_json_lists_path_line_preview_and_kind(run, tree, tokens):
    """--json, before or after the command, prints the findings as a list; never the keys."""
    for args in (("--json", "scan"), ("scan", "--json")):
        result = run(*args)

        assert result.exit_code == FOUND
        assert json.loads(result.stdout) == [
            {"path": "app/settings.py", "line": 3, "preview": token_preview(tokens["user"]),
             "kind": "user"},
            {"path": "config.env", "line": 1, "preview": token_preview(tokens["svc"]),
             "kind": "svc"},
            {"path": "sub/deeper/notes.md", "line": 2, "preview": token_preview(tokens["org"]),
             "kind": "org"},
            {"path": "two.txt", "line": 1, "preview": token_preview(tokens["project"]),
             "kind": "project"},
            {"path": "two.txt", "line": 1, "preview": token_preview(tokens["org"]),
             "kind": "org"},
        ]  # fmt: skip
        assert result.stderr == "5 keyportal keys found in 4 files.\n"
        assert_never_shown(result, *tokens.values())


def test_json_with_nothing_found_is_an_empty_list(run, tmp_path, monkeypatch):
    """An empty list, not nothing: a script can always parse the output."""
    monkeypatch.chdir(tmp_path)
    result = run("scan", "--json")

    assert result.exit_code == 0
    assert json.loads(result.stdout) == []


def test_large_and_binary_files_are_skipped_and_verbose_says_so(run, tmp_path, monkeypatch, tokens):
    """Files over 5 MiB and files with a NUL byte early are skipped; --verbose names them."""
    key = tokens["org"]
    write(tmp_path / "big.log", f"{key}\n" + "x" * (5 * 1024 * 1024))
    write(tmp_path / "just-fits.log", f"{key}\n".ljust(5 * 1024 * 1024, "x"))
    write(tmp_path / "image.bin", b"GIF89a\x00" + key.encode())
    write(tmp_path / "late-nul.txt", f"{key}\n".encode() + b"y" * 9000 + b"\x00")
    monkeypatch.chdir(tmp_path)
    found = [f"just-fits.log:1: {token_preview(key)}", f"late-nul.txt:1: {token_preview(key)}"]

    quiet = run("scan")
    verbose = run("scan", "--verbose")

    assert quiet.stdout.splitlines() == verbose.stdout.splitlines() == found
    assert quiet.stderr == "2 keyportal keys found in 2 files.\n"
    assert verbose.stderr.splitlines() == [
        "Skipped big.log: larger than 5 MiB.",
        "Skipped image.bin: binary.",
        "2 keyportal keys found in 2 files.",
    ]
    assert_never_shown(verbose, key)


def test_an_unreadable_file_is_a_warning_and_the_scan_goes_on(run, tree, tokens, monkeypatch):
    """A file that cannot be read is named on stderr; the others are still scanned."""
    write(tree / "locked.txt", tokens["user"])
    real_open = Path.open

    def refusing_open(self, *args, **kwargs):
        if self.name == "locked.txt":
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refusing_open)
    result = run("scan")

    assert result.exit_code == FOUND
    assert result.stdout.splitlines() == expected(FOUND_IN_TREE, tokens)
    assert result.stderr.splitlines() == [
        "Warning: cannot read locked.txt: Permission denied.",
        "5 keyportal keys found in 4 files.",
    ]


def test_links_are_not_followed_by_the_walk(run, tmp_path, monkeypatch, tokens):
    """A walk leaves links to files and folders alone; a link named on the command line is read."""
    write(tmp_path / "outside" / "secret.txt", tokens["org"])
    work = tmp_path / "work"
    work.mkdir()
    (work / "link.txt").symlink_to(tmp_path / "outside" / "secret.txt")
    (work / "linked-folder").symlink_to(tmp_path / "outside", target_is_directory=True)
    monkeypatch.chdir(work)

    walked = run("scan")
    named = run("scan", "link.txt")

    assert walked.exit_code == 0
    assert walked.stdout == ""
    assert named.exit_code == FOUND
    assert named.stdout == f"link.txt:1: {token_preview(tokens['org'])}\n"


def test_a_missing_path_is_a_usage_error(run, tmp_path, monkeypatch):
    """A PATH that does not exist is click's exit 2, naming it."""
    monkeypatch.chdir(tmp_path)
    result = run("scan", "nowhere")

    assert result.exit_code == 2
    assert "'nowhere' does not exist" in result.stderr


# --staged: what git's index holds, in a real repository.


def git(*args: str, cwd: Path, env: dict[str, str] | None = None, check: bool = True) -> str:
    """Run git in `cwd` and return its stdout (a CompletedProcess when `check` is False)."""
    done = subprocess.run(  # noqa: S603 (git, with arguments as a list: no shell)
        ["git", *args],  # noqa: S607 (git from PATH, as the hooks run it)
        cwd=cwd,
        env=env,
        check=check,
        capture_output=True,
        text=True,
    )
    return done.stdout if check else done


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Path:
    """Return a new git repository, made current, free of the developer's git settings."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "repo"
    path.mkdir()
    git("init", "--quiet", cwd=path)
    git("config", "user.name", "Ada", cwd=path)
    git("config", "user.email", "ada@example.com", cwd=path)
    monkeypatch.chdir(path)
    return path


def commit(repo: Path, message: str = "base") -> None:
    git("commit", "--quiet", "--no-verify", "-m", message, cwd=repo)


@pytest.fixture
def staged(repo, tokens) -> dict[str, str]:
    """Stage files in `repo`, some changed after, and return the keys by where they are.

    Staged and reported: staged.py (a key since deleted from the working copy), dir/nested.txt,
    modified.txt (changed since the commit), node_modules/lib.js. Not reported: committed.txt
    (unchanged), unstaged.py (key only in the working copy), untracked.py, a staged binary file,
    a staged look-alike.
    """
    keys = {name: generate_token("org") for name in ("committed", "unstaged", "untracked")}
    keys |= {
        "staged": tokens["user"],
        "nested": tokens["project"],
        "modified": tokens["svc"],
        "node_modules": tokens["org"],
        "binary": generate_token("svc"),
    }
    write(repo / "committed.txt", f"{keys['committed']}\n")
    write(repo / "modified.txt", "clean\n")
    commit_files = ["committed.txt", "modified.txt"]
    git("add", *commit_files, cwd=repo)
    commit(repo)

    write(repo / "modified.txt", f"clean\nnow = '{keys['modified']}'\n")
    write(repo / "staged.py", f"TOKEN = '{keys['staged']}'\n")
    write(repo / "dir" / "nested.txt", f"one\ntwo\n{keys['nested']}\n")
    write(repo / "node_modules" / "lib.js", f"const key = '{keys['node_modules']}';\n")
    write(repo / "unstaged.py", "TOKEN = None\n")
    write(repo / "image.bin", b"\x00\x01" + keys["binary"].encode())
    write(repo / "lookalike.txt", lookalikes(tokens["org"]))
    git("add", ".", cwd=repo)

    write(repo / "staged.py", "TOKEN = None\n")  # deleted from the file, still staged
    write(repo / "unstaged.py", f"TOKEN = '{keys['unstaged']}'\n")  # in the file, not staged
    write(repo / "untracked.py", f"TOKEN = '{keys['untracked']}'\n")
    return keys


def staged_lines(keys: dict[str, str], only: tuple[str, ...] | None = None) -> list[str]:
    lines = {
        "nested": f"dir/nested.txt:3: {token_preview(keys['nested'])}",
        "modified": f"modified.txt:2: {token_preview(keys['modified'])}",
        "node_modules": f"node_modules/lib.js:1: {token_preview(keys['node_modules'])}",
        "staged": f"staged.py:1: {token_preview(keys['staged'])}",
    }
    return [line for name, line in lines.items() if only is None or name in only]


def test_staged_reads_the_index_not_the_working_copy(run, repo, staged):
    """A key staged then deleted is found; one only in the working copy, or committed, is not."""
    result = run("scan", "--staged")

    assert result.exit_code == FOUND
    assert result.stdout.splitlines() == staged_lines(staged)
    assert result.stderr == "4 keyportal keys found in 4 files.\n"
    assert_never_shown(result, *staged.values())


def test_staged_paths_are_from_the_top_and_paths_limit_them(run, repo, staged, monkeypatch):
    """From a subfolder, paths still start at the top; PATHs keep only the staged files below."""
    monkeypatch.chdir(repo / "dir")
    everything = run("scan", "--staged")
    below = run("scan", "--staged", ".")
    monkeypatch.chdir(repo)
    named = run("scan", "--staged", "staged.py", "unstaged.py")

    assert everything.stdout.splitlines() == staged_lines(staged)
    assert below.stdout.splitlines() == staged_lines(staged, only=("nested",))
    assert named.stdout.splitlines() == staged_lines(staged, only=("staged",))
    assert named.stderr == "1 keyportal key found in 1 file.\n"


def test_staged_with_nothing_staged_finds_nothing(run, repo, tokens):
    """Keys in the working copy only: nothing is staged, nothing is found."""
    write(repo / "notes.txt", tokens["org"])
    result = run("scan", "--staged")

    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr == "No keyportal keys found.\n"


def test_staged_outside_a_repository_is_exit_1(run, tmp_path, monkeypatch):
    """Without a repository --staged has no index to read: exit 1, saying so."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    monkeypatch.delenv("GIT_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    result = run("scan", "--staged")

    assert result.exit_code == 1
    assert result.stderr == "Error: --staged reads git's index: run it inside a git repository.\n"


def docs_block(language: str, holding: str) -> str:
    """Return the one fenced block of docs/cli.md in `language` that holds `holding`."""
    blocks = re.findall(rf"^```{language}\n(.*?)^```$", DOCS, flags=re.MULTILINE | re.DOTALL)
    found = [block for block in blocks if holding in block]
    assert len(found) == 1, (language, holding, found)
    return found[0]


def test_the_documented_pre_commit_hook_stops_a_commit_holding_a_key(repo, staged, tokens):
    """docs/cli.md's hook, installed as written, refuses a commit with a key and lets a clean one."""
    program = Path(sys.executable).with_name("keyportal")
    if not program.exists():
        pytest.skip(f"{program} is not installed (pip install -e .)")
    hook = repo / ".git" / "hooks" / "pre-commit"
    write(hook, docs_block("sh", "#!/bin/sh"))
    hook.chmod(0o755)
    env = {**os.environ, "PATH": f"{program.parent}{os.pathsep}{os.environ['PATH']}"}

    refused = git("commit", "-m", "with keys", cwd=repo, env=env, check=False)

    # git sends a hook's stdout to its stderr.
    assert refused.returncode != 0
    assert refused.stderr.splitlines() == [
        *staged_lines(staged),
        "4 keyportal keys found in 4 files.",
    ]
    for key in staged.values():
        assert key not in refused.stdout + refused.stderr
    assert git("rev-list", "--count", "HEAD", cwd=repo).strip() == "1"

    git("restore", "--staged", "staged.py", "dir", "modified.txt", "node_modules", cwd=repo)
    accepted = git("commit", "-m", "clean", cwd=repo, env=env, check=False)

    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stderr == "No keyportal keys found.\n"
    assert git("rev-list", "--count", "HEAD", cwd=repo).strip() == "2"


# --report: each key found goes to the server's public leak report.


@pytest.fixture
def server(monkeypatch):
    """Answer the CLI's requests in memory as the leak report does; return what was sent."""
    seen: list[httpx.Request] = []
    answers: list[httpx.Response] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if answers:
            return answers.pop(0)
        return httpx.Response(202, json={"received": True, "message": "Thank you."})

    monkeypatch.setattr(
        scan_module,
        "ApiClient",
        functools.partial(ApiClient, transport=httpx.MockTransport(answer)),
    )
    return seen, answers


def test_report_sends_each_key_without_authorization(run, tree, tokens, server):
    """One POST per key, first place found, no Authorization even with a key configured."""
    seen, _answers = server
    result = run("--api-key", tokens["user"], "scan", "--report",
                 env={"KEYPORTAL_URL": SERVER, "KEYPORTAL_API_KEY": tokens["svc"]})  # fmt: skip

    assert result.exit_code == FOUND
    assert result.stdout.splitlines() == expected(FOUND_IN_TREE, tokens)
    assert [(request.method, str(request.url)) for request in seen] == [
        ("POST", f"{SERVER}/api/v1/keys/leaked")
    ] * 4
    assert [json.loads(request.content) for request in seen] == [
        {"token": tokens["user"], "location": "app/settings.py:3"},
        {"token": tokens["svc"], "location": "config.env:1"},
        {"token": tokens["org"], "location": "sub/deeper/notes.md:2"},
        {"token": tokens["project"], "location": "two.txt:1"},
    ]
    for request in seen:
        assert "authorization" not in request.headers
        assert request.headers["User-Agent"] == USER_AGENT
        assert request.headers["Content-Type"] == "application/json"
    assert result.stderr.splitlines() == [
        "5 keyportal keys found in 4 files.",
        *(f"reported {token_preview(tokens[kind])}" for kind in ("user", "svc", "org", "project")),
    ]
    assert_never_shown(result, *tokens.values())


def test_report_needs_no_login_and_uses_the_stored_address(run, tmp_path, monkeypatch, server):
    """Without any key the report is sent; a stored login gives the address, never its key."""
    seen, _answers = server
    leaked = generate_token("project")
    write(tmp_path / "work" / "leak.txt", f"{leaked}\n")
    monkeypatch.chdir(tmp_path / "work")

    anonymous = run("--url", "http://127.0.0.1:8123", "scan", "--report")
    credentials.save({"url": SERVER, "api_key": generate_token("user")})
    stored = run("scan", "--report")

    assert anonymous.exit_code == stored.exit_code == FOUND
    assert [str(request.url) for request in seen] == [
        "http://127.0.0.1:8123/api/v1/keys/leaked",
        f"{SERVER}/api/v1/keys/leaked",
    ]
    assert all("authorization" not in request.headers for request in seen)
    assert stored.stderr.splitlines()[-1] == f"reported {token_preview(leaked)}"


def test_report_sends_a_location_the_server_takes(run, tmp_path, monkeypatch, tokens, server):
    """A control character in a path is sent as "?", a path over 500 characters by its end."""
    seen, _answers = server
    deep = Path("a" * 200, "b" * 200, "c" * 150 + ".txt")
    write(tmp_path / deep, f"\n{tokens['org']}\n")
    write(tmp_path / "tab\there.txt", tokens["svc"])
    monkeypatch.chdir(tmp_path)

    result = run("--url", SERVER, "scan", "--report")

    assert result.exit_code == FOUND
    locations = [json.loads(request.content)["location"] for request in seen]
    assert locations == ["..." + f"{deep}:2"[-497:], "tab?here.txt:1"]
    assert len(locations[0]) == 500


def test_report_with_nothing_found_sends_nothing(run, tmp_path, monkeypatch, server):
    """No key, no request."""
    seen, _answers = server
    monkeypatch.chdir(tmp_path)

    result = run("--url", SERVER, "scan", "--report")

    assert result.exit_code == 0
    assert seen == []


def test_a_rate_limited_report_is_exit_6_after_the_findings(run, tree, tokens, server):
    """429 stops the reports at once and says when to retry; the findings are printed first."""
    seen, answers = server
    answers.append(
        httpx.Response(429, headers={"Retry-After": "42"},
                       json={"error": {"code": "rate_limited", "message": "Slow down."}})
    )  # fmt: skip

    result = run("--url", SERVER, "scan", "--report")

    assert result.exit_code == RATE_LIMITED
    assert len(seen) == 1
    assert result.stdout.splitlines() == expected(FOUND_IN_TREE, tokens)
    assert result.stderr.splitlines() == [
        "5 keyportal keys found in 4 files.",
        "Error: Too many requests from this address: retry in 42 seconds (Slow down).",
    ]


def test_a_refused_report_never_echoes_the_key(run, tmp_path, monkeypatch, tokens, server):
    """A 422 is exit 1 with the server's message, any key in it shown by its preview."""
    _seen, answers = server
    key = tokens["org"]
    write(tmp_path / "leak.txt", key)
    monkeypatch.chdir(tmp_path)
    answers.append(
        httpx.Response(422, json={"error": {"code": "invalid", "message": f"Bad token {key}."}})
    )

    result = run("--url", SERVER, "scan", "--report")

    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        f"Error: The server refused the request (422): Bad token {token_preview(key)}."
    )
    assert_never_shown(result, key)


def test_an_unreachable_server_is_exit_7(run, tmp_path, monkeypatch, tokens):
    """No answer at all: exit 7, the findings already printed."""
    write(tmp_path / "leak.txt", tokens["svc"])
    monkeypatch.chdir(tmp_path)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    monkeypatch.setattr(
        scan_module,
        "ApiClient",
        functools.partial(ApiClient, transport=httpx.MockTransport(refuse)),
    )
    result = run("--url", SERVER, "scan", "--report")

    assert result.exit_code == NETWORK
    assert result.stdout == f"leak.txt:1: {token_preview(tokens['svc'])}\n"
    assert (
        result.stderr.splitlines()[-1]
        == f"Error: Cannot connect to {SERVER}: is keyportal running?"
    )


# What the scan rests on: no Django, one regex said once, exit codes documented.


def test_the_cli_imports_no_django():
    """The CLI, scan included, loads without Django: it must run where only the CLI is installed."""
    loaded = subprocess.run(
        [sys.executable, "-c",
         "import sys, keyportal_cli.main, keyportal_cli.commands.scan; "
         "print(sorted(m for m in sys.modules if m.split('.')[0] == 'django'))"],
        cwd=ROOT, check=True, capture_output=True, text=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": ""},
    )  # fmt: skip

    assert loaded.stdout.strip() == "[]"


def test_the_documented_scanner_rules_use_the_token_pattern():
    """docs/cli.md's regex, gitleaks rule and TruffleHog detector are TOKEN_PATTERN, exactly."""
    gitleaks = tomllib.loads(docs_block("toml", "[[rules]]"))
    trufflehog = yaml.safe_load(docs_block("yaml", "detectors:"))
    prefixes = list(PREFIXES.values())

    assert f"\n```\n{TOKEN_PATTERN}\n```\n" in DOCS
    assert gitleaks["extend"] == {"useDefault": True}
    [rule] = gitleaks["rules"]
    assert rule["regex"] == TOKEN_PATTERN
    assert rule["keywords"] == prefixes
    assert rule["id"] == "keyportal-api-key"
    [detector] = trufflehog["detectors"]
    assert detector["regex"] == {"key": TOKEN_PATTERN}
    assert detector["keywords"] == prefixes


def test_the_pre_commit_framework_hook_runs_scan_on_the_files():
    """.pre-commit-hooks.yaml declares keyportal-scan: `keyportal scan FILE...` in Python."""
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())

    assert hooks == [
        {
            "id": "keyportal-scan",
            "name": "keyportal scan",
            "description": hooks[0]["description"],
            "entry": "keyportal scan",
            "language": "python",
            "pass_filenames": True,
        }
    ]
    assert docs_block("sh", "#!/bin/sh") == "#!/bin/sh\nexec keyportal scan --staged\n"


def test_exit_8_is_in_the_help_and_the_docs(run):
    """The exit code table in --help and in docs/cli.md lists every code, 8 included."""
    assert EXIT_CODES[FOUND] == "`keyportal scan` found a key"
    assert "  8  `keyportal scan` found a key" in run("--help").stdout
    documented = re.findall(r"^\| (\d+) \| ", DOCS, flags=re.MULTILINE)
    assert [int(code) for code in documented] == sorted(EXIT_CODES)


def test_a_key_glued_to_other_text_is_found(run, tmp_path, monkeypatch, tokens):
    """`API_KEY_sk-...` or a key followed by `_prod`: no word boundary hides a leaked key."""
    write(tmp_path / "glued.env", f"API_KEY_{tokens['project']}_prod\nX{tokens['user']}Y\n")
    monkeypatch.chdir(tmp_path)

    result = run("scan")

    assert result.exit_code == FOUND
    assert result.stdout.splitlines() == [
        f"glued.env:1: {token_preview(tokens['project'])}",
        f"glued.env:2: {token_preview(tokens['user'])}",
    ]
    assert_never_shown(result, *tokens.values())
