"""`keyportal app list` and `app publish`: the round trip to a stored version, and refusals."""

from __future__ import annotations

import json
import os
import tarfile

import pytest

from keyportal_cli import bundle
from projects.models import ApiKeyAccess, AppVersion
from tests.cli.conftest import assert_never_shown, org_token
from tests.factories import AppFactory, ProjectFactory, TeamFactory

pytestmark = pytest.mark.django_db(transaction=True)

PUBLISH = ["apps:read", "apps:publish"]


@pytest.fixture
def storefront(org):
    """Return the app "Storefront" of Acme, shared with API keys ("Can edit")."""
    project = ProjectFactory(team=TeamFactory(organization=org.organization))
    return AppFactory(
        project=project, name="Storefront", slug="storefront", api_key_access=ApiKeyAccess.CAN_EDIT
    )


@pytest.fixture
def site(tmp_path):
    """Return a folder to publish: two files, a sub-folder, a link inside it and a .git."""
    root = tmp_path / "site"
    (root / "css").mkdir(parents=True)
    (root / "index.html").write_text("<h1>hello</h1>")
    (root / "css" / "app.css").write_text("h1 { color: teal }")
    (root / "latest.html").symlink_to("index.html")
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("[remote] url = secret")
    return root


def test_publish_round_trip(keyportal, org, storefront, site):
    """The folder becomes the app's next version: names relative to it, .git left out."""
    token = org_token(org, PUBLISH)
    result = keyportal(
        "app", "publish", "--name", "STOREFRONT", "--path", str(site),
        env={"KEYPORTAL_API_KEY": token},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    version = AppVersion.objects.get(app=storefront)
    assert result.stdout.startswith("Published Storefront version 1: 3 files, ")
    with version.bundle.open("rb") as stored, tarfile.open(fileobj=stored, mode="r:gz") as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert set(members) == {"css", "css/app.css", "index.html", "latest.html"}
        assert members["latest.html"].isfile()
        assert tar.extractfile("latest.html").read() == b"<h1>hello</h1>"
        assert {m.uname for m in members.values()} == {""}
    assert version.files == 3
    assert_never_shown(result, token)


def test_publish_by_id_as_json(keyportal, org, storefront, site):
    """--id publishes without a lookup by name; --json prints the version the server made."""
    token = org_token(org, PUBLISH)
    keyportal("app", "publish", "--id", str(storefront.pk), "--path", str(site),
              env={"KEYPORTAL_API_KEY": token})  # fmt: skip
    result = keyportal(
        "--json", "app", "publish", "--id", str(storefront.pk), "--path", str(site),
        env={"KEYPORTAL_API_KEY": token},
    )  # fmt: skip
    assert result.exit_code == 0
    assert json.loads(result.stdout)["version"] == 2


def test_a_link_out_of_the_folder_is_refused_before_uploading(keyportal, org, storefront, site):
    """A link pointing outside the folder stops the publish; nothing reaches the server."""
    (site / "passwd").symlink_to("/etc/passwd")
    result = keyportal(
        "app", "publish", "--name", "Storefront", "--path", str(site),
        env={"KEYPORTAL_API_KEY": org_token(org, PUBLISH)},
    )  # fmt: skip
    assert result.exit_code == 1
    assert "passwd is a link to /etc/passwd, outside" in result.stderr
    assert not AppVersion.objects.exists()


def test_more_than_10_mb_is_refused_before_uploading(keyportal, org, storefront, tmp_path):
    """A folder that packs to more than 10 MB is refused with a clear line."""
    big = tmp_path / "big"
    big.mkdir()
    (big / "noise.bin").write_bytes(os.urandom(11 * 1024 * 1024))
    result = keyportal(
        "app", "publish", "--name", "Storefront", "--path", str(big),
        env={"KEYPORTAL_API_KEY": org_token(org, PUBLISH)},
    )  # fmt: skip
    assert result.exit_code == 1
    assert "packs to more than 10 MB" in result.stderr
    assert "nothing was uploaded" in result.stderr
    assert not AppVersion.objects.exists()


def test_too_many_files_are_refused_before_uploading(keyportal, org, storefront, site, monkeypatch):
    """A folder of more files and folders than a bundle may hold is refused before uploading."""
    monkeypatch.setattr(bundle, "MAX_MEMBERS", 3)
    result = keyportal(
        "app", "publish", "--name", "Storefront", "--path", str(site),
        env={"KEYPORTAL_API_KEY": org_token(org, PUBLISH)},
    )  # fmt: skip
    assert result.exit_code == 1
    assert "holds more than 3 files and folders" in result.stderr
    assert not AppVersion.objects.exists()


def test_an_empty_folder_is_refused(keyportal, org, storefront, tmp_path):
    """A folder holding no file (a .git only) has nothing to publish."""
    (tmp_path / "empty" / ".git").mkdir(parents=True)
    result = keyportal(
        "app", "publish", "--name", "Storefront", "--path", str(tmp_path / "empty"),
        env={"KEYPORTAL_API_KEY": org_token(org, PUBLISH)},
    )  # fmt: skip
    assert result.exit_code == 1
    assert "holds no file to publish" in result.stderr


def test_an_app_with_no_access_says_to_share_it(keyportal, org, site):
    """Sharing "No access": by id the server's 403 says to set "Can edit"; by name it is unlisted."""
    hidden = AppFactory(project=ProjectFactory(team=TeamFactory(organization=org.organization)))
    token = org_token(org, PUBLISH)
    by_id = keyportal("app", "publish", "--id", str(hidden.pk), "--path", str(site),
                      env={"KEYPORTAL_API_KEY": token})  # fmt: skip
    assert by_id.exit_code == 4
    assert 'must set the app\'s sharing to "Can edit"' in by_id.stderr
    by_name = keyportal("app", "publish", "--name", hidden.name, "--path", str(site),
                        env={"KEYPORTAL_API_KEY": token})  # fmt: skip
    assert by_name.exit_code == 5
    assert f"No app named “{hidden.name}”" in by_name.stderr
    assert '"Can edit"' in by_name.stderr
    assert not AppVersion.objects.exists()


def test_another_tenants_app_is_not_found(keyportal, org, other_org, site):
    """An app of another organization is unknown, by name and by id."""
    foreign = AppFactory(
        project=ProjectFactory(team=TeamFactory(organization=other_org.organization)),
        name="Globex Shop",
        api_key_access=ApiKeyAccess.CAN_EDIT,
    )
    token = org_token(org, PUBLISH)
    by_name = keyportal("app", "publish", "--name", "Globex Shop", "--path", str(site),
                        env={"KEYPORTAL_API_KEY": token})  # fmt: skip
    assert by_name.exit_code == 5
    by_id = keyportal("app", "publish", "--id", str(foreign.pk), "--path", str(site),
                      env={"KEYPORTAL_API_KEY": token})  # fmt: skip
    assert by_id.exit_code == 5
    assert not AppVersion.objects.exists()


def test_publishing_without_the_permission_names_it(keyportal, org, storefront, site):
    """A key with apps:read only is told it lacks apps:publish."""
    result = keyportal(
        "app", "publish", "--name", "Storefront", "--path", str(site),
        env={"KEYPORTAL_API_KEY": org_token(org, ["apps:read"])},
    )  # fmt: skip
    assert result.exit_code == 4
    assert "lacks the permission apps:publish" in result.stderr


def test_app_list_table_and_json(keyportal, org, storefront):
    """The list shows the shared apps; --json prints the server's list."""
    AppFactory(project=storefront.project, name="Hidden")  # No access: not listed
    token = org_token(org, ["apps:read"])
    table = keyportal("app", "list", env={"KEYPORTAL_API_KEY": token})
    assert table.exit_code == 0
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["ID", "NAME", "SLUG", "PROJECT", "CREATED"]
    assert "Storefront" in lines[1]
    assert "Hidden" not in table.stdout
    listed = json.loads(keyportal("app", "list", "--json", env={"KEYPORTAL_API_KEY": token}).stdout)
    assert [app["name"] for app in listed] == ["Storefront"]


def test_app_list_names_each_apps_project(keyportal, org, storefront):
    """The PROJECT column shows each app's project by name; --json carries project_name."""
    storefront.project.name = "Payments Web"
    storefront.project.save()
    other = ProjectFactory(team=storefront.project.team, name="Docs")
    AppFactory(
        project=other, name="Handbook", slug="handbook", api_key_access=ApiKeyAccess.CAN_EDIT
    )
    token = org_token(org, ["apps:read"])
    lines = keyportal("app", "list", env={"KEYPORTAL_API_KEY": token}).stdout.splitlines()
    project_at = lines[0].index("PROJECT")
    rows = {line.split()[1]: line[project_at:].split("  ")[0].strip() for line in lines[1:]}
    assert rows == {"Handbook": "Docs", "Storefront": "Payments Web"}
    listed = json.loads(keyportal("--json", "app", "list", env={"KEYPORTAL_API_KEY": token}).stdout)
    assert {app["name"]: app["project_name"] for app in listed} == rows


def test_two_apps_of_one_name_are_told_apart_by_project(keyportal, org, storefront, site):
    """Publishing by a name two apps share names their projects, to pick one with --id."""
    other = ProjectFactory(team=storefront.project.team, name="Outlet")
    twin = AppFactory(
        project=other, name="Storefront", slug="storefront-2", api_key_access=ApiKeyAccess.CAN_EDIT
    )
    result = keyportal(
        "app", "publish", "--name", "Storefront", "--path", str(site),
        env={"KEYPORTAL_API_KEY": org_token(org, PUBLISH)},
    )  # fmt: skip
    assert result.exit_code == 2
    assert f"{twin.pk} (project Outlet)" in result.stderr
    assert f"{storefront.pk} (project {storefront.project.name})" in result.stderr
    assert not AppVersion.objects.exists()


def test_the_cli_identifies_itself_and_a_publish_is_recorded_as_cli(
    keyportal, org, storefront, site
):
    """Published with the CLI, a version says so on the app's page: origin CLI."""
    result = keyportal(
        "app", "publish", "--name", "Storefront", "--path", str(site),
        env={"KEYPORTAL_API_KEY": org_token(org, PUBLISH, name="deploy")},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    version = AppVersion.objects.get(app=storefront)
    assert version.origin == "cli"
    assert version.actor_label.startswith("deploy (sk-org-...")
