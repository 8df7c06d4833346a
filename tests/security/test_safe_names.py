"""Names are safe to show: no control characters, no text-direction overrides, at every door.

One rule (keyportal_cli.names), tested here once as a table: the console's forms, the API's
schemas and the services behind them each refuse the same names with the same message. The CLI's
check before sending is in tests/cli/test_keys.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from accounts.access import Actor
from accounts.models import Organization, ServiceAccount, Team, User
from accounts.services import (
    invitation_create,
    organization_create,
    organization_rename,
    service_account_create,
    service_account_update,
    user_signup,
)
from apikeys.models import ApiKey, DeviceAuthorization
from apikeys.permissions import ALL
from keyportal.validators import validate_display_name
from keyportal_cli.names import name_problem, unsafe_character
from projects import services as project_services
from projects.models import App, Environment, Project, Target
from tests.accounts.helpers import page_text, row_counts
from tests.apikeys.conftest import build_tree, operator_key
from tests.factories import AppFactory, ServiceAccountFactory

RLO = "\u202e"
MESSAGE = "Names cannot contain control characters or text-direction overrides (U+202E)."
# A name that shows as "invoice-exe.pdf" but is stored as "invoice-fdp.exe" reversed.
SPOOFED = f"invoice-{RLO}fdp.exe"

# Every character the rule refuses, by family, with the code point the message names.
REFUSED = {
    "NUL": ("\x00", "U+0000"),
    "newline": ("\n", "U+000A"),
    "tab": ("\t", "U+0009"),
    "carriage return": ("\r", "U+000D"),
    "escape": ("\x1b", "U+001B"),
    "DEL": ("\x7f", "U+007F"),
    "C1 (NEL)": ("\x85", "U+0085"),
    "C1 (CSI)": ("\x9b", "U+009B"),
    "LRE": ("\u202a", "U+202A"),
    "RLE": ("\u202b", "U+202B"),
    "PDF": ("\u202c", "U+202C"),
    "LRO": ("\u202d", "U+202D"),
    "RLO": ("\u202e", "U+202E"),
    "LRI": ("\u2066", "U+2066"),
    "RLI": ("\u2067", "U+2067"),
    "FSI": ("\u2068", "U+2068"),
    "PDI": ("\u2069", "U+2069"),
    "LRM": ("\u200e", "U+200E"),
    "RLM": ("\u200f", "U+200F"),
    "ALM": ("\u061c", "U+061C"),
    "line separator": ("\u2028", "U+2028"),
    "paragraph separator": ("\u2029", "U+2029"),
}
ACCEPTED = [
    "Payments API",
    "Équipe données",
    "支払い",
    "مدفوعات",  # right-to-left text itself is fine; only the invisible controls are refused
    "deploy-bot \U0001f469\u200d\U0001f4bb",  # an emoji joined by ZERO WIDTH JOINER (format, not control)
    "a\u2013b \u201cquoted\u201d",  # an en dash and curly quotes
]


# The rule -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("character", "code"), REFUSED.values(), ids=REFUSED.keys())
def test_every_refused_character_is_named_in_the_message(character, code):
    """Each control or direction character is refused, wherever it sits, and the message names it."""
    for name in (f"{character}name", f"na{character}me", f"name{character}"):
        assert unsafe_character(name) == character
        assert name_problem(name) == (
            f"Names cannot contain control characters or text-direction overrides ({code})."
        )
        with pytest.raises(ValidationError) as caught:
            validate_display_name(name)
        assert caught.value.messages == [name_problem(name)]
        assert caught.value.code == "unsafe_name"


@pytest.mark.parametrize("name", ACCEPTED)
def test_ordinary_names_in_any_script_are_accepted(name):
    """Accents, other scripts, right-to-left letters and emoji are names like any other."""
    assert name_problem(name) is None
    validate_display_name(name)


def test_the_message_names_the_first_refused_character():
    """With several, the message names the first one."""
    assert "(U+2066)" in name_problem(f"a\u2066b{RLO}c\n")


# The console: every form with a name -------------------------------------------------------


def _console_cases():
    """Yield (id, who posts, url maker, data maker, model whose rows must not change)."""
    tree_kinds = {
        "teams": lambda tree: tree.project.team,
        "projects": lambda tree: tree.project,
        "targets": lambda tree: tree.target,
        "environments": lambda tree: tree.environment,
        "apps": lambda tree: tree.app,
    }
    yield ("team", "/o/acme/teams/", lambda tree: {"name": SPOOFED})
    yield (
        "project",
        "/o/acme/",
        lambda tree: {"name": SPOOFED, "team": tree.project.team_id},
    )
    yield (
        "target",
        lambda tree: f"/o/acme/projects/{tree.project.pk}/",
        lambda tree: {"target-name": SPOOFED},
    )
    yield (
        "environment",
        lambda tree: f"/o/acme/targets/{tree.target.pk}/environments/",
        lambda tree: {"environment-name": SPOOFED},
    )
    yield (
        "app",
        "/o/acme/apps/",
        lambda tree: {"name": SPOOFED, "slug": "spoof", "project": tree.project.pk},
    )
    for kind, pick in tree_kinds.items():
        yield (
            f"rename {kind}",
            lambda tree, kind=kind, pick=pick: f"/o/acme/{kind}/{pick(tree).pk}/rename/",
            lambda tree: {"name": SPOOFED},
        )
    yield (
        "service account",
        "/o/acme/service-accounts/",
        lambda tree: {"name": SPOOFED, "description": ""},
    )
    yield (
        "service account edit",
        lambda tree: f"/o/acme/service-accounts/{tree.account.pk}/",
        lambda tree: {"name": SPOOFED, "description": ""},
    )
    yield ("organization", "/organizations/new/", lambda tree: {"name": SPOOFED})
    yield ("personal key", "/o/acme/api-keys/new/user/", lambda tree: {"name": SPOOFED})
    yield ("organization key", "/o/acme/api-keys/new/org/", lambda tree: {"name": SPOOFED})


CONSOLE_CASES = {case[0]: case[1:] for case in _console_cases()}


@pytest.fixture
def named_tree(org):
    """Return Acme's project tree with an app and a service account, all with plain names."""
    tree = build_tree(org)
    tree.app = AppFactory(project=tree.project, name="Storefront", slug="storefront")
    tree.account = ServiceAccountFactory(
        organization=org.organization, name="deploy-bot", created_by=org.owner
    )
    return tree


def _names() -> set[str]:
    """Return every name stored anywhere a console form writes one."""
    models = (Organization, Team, Project, Target, Environment, App, ServiceAccount, ApiKey)
    return {name for model in models for name in model.objects.values_list("name", flat=True)}


@pytest.mark.parametrize(("url", "data"), CONSOLE_CASES.values(), ids=CONSOLE_CASES.keys())
def test_console_forms_refuse_unsafe_names(client_for, org, named_tree, url, data):
    """Every console form that takes a name refuses one with a direction override: 422, the
    message beside the field, nothing saved."""
    before = row_counts()
    url = url(named_tree) if callable(url) else url
    response = client_for(org.owner).post(url, data(named_tree))
    assert response.status_code == 422
    assert MESSAGE in page_text(response)
    assert row_counts() == before
    assert SPOOFED not in _names()


def test_signup_refuses_unsafe_names(db, mailoutbox):
    """Signing up refuses a display name or an organization name with a control character."""
    for field in ("display_name", "organization_name"):
        data = {"display_name": "Ada", "email": "ada@example.test", "organization_name": "Acme"}
        response = Client().post(reverse("signup"), {**data, field: "Ada\x1b[31m"})
        assert response.status_code == 422
        assert "(U+001B)" in page_text(response)
    assert mailoutbox == []


def test_invitation_signup_refuses_an_unsafe_display_name(org):
    """Joining by invitation refuses a display name with a direction override."""
    _invitation, link = invitation_create(
        actor=Actor(user=org.owner),
        organization=org.organization,
        email="new@example.test",
        role="member",
        accept_url=lambda token: reverse("invitation", args=[token]),
    )
    response = Client().post(link, {"display_name": SPOOFED, "password": "analytical-engine-1843"})
    assert response.status_code == 422
    assert MESSAGE in page_text(response)
    assert not User.objects.filter(email="new@example.test").exists()


# The API: every schema field that is a name --------------------------------------------------


def _api_cases():
    """Yield (id, method, path maker, body maker, field the message names)."""
    yield ("team", "post", "/api/v1/teams", lambda t: {"name": SPOOFED}, "name")
    yield (
        "project",
        "post",
        "/api/v1/projects",
        lambda t: {"name": SPOOFED, "team_id": t.project.team_id},
        "name",
    )
    yield (
        "target",
        "post",
        "/api/v1/targets",
        lambda t: {"name": SPOOFED, "project_id": t.project.pk},
        "name",
    )
    yield (
        "environment",
        "post",
        "/api/v1/environments",
        lambda t: {"name": SPOOFED, "target_id": t.target.pk},
        "name",
    )
    for area, pick in {
        "teams": lambda t: t.project.team,
        "projects": lambda t: t.project,
        "targets": lambda t: t.target,
        "environments": lambda t: t.environment,
    }.items():
        yield (
            f"rename {area}",
            "patch",
            lambda t, area=area, pick=pick: f"/api/v1/{area}/{pick(t).pk}",
            lambda t: {"name": SPOOFED},
            "name",
        )
    yield ("organization", "patch", "/api/v1/organization", lambda t: {"name": SPOOFED}, "name")
    yield (
        "app",
        "post",
        "/api/v1/apps",
        lambda t: {"name": SPOOFED, "slug": "spoof", "project_id": t.project.pk},
        "name",
    )
    yield (
        "rename app",
        "patch",
        lambda t: f"/api/v1/apps/{t.app.pk}",
        lambda t: {"name": SPOOFED},
        "name",
    )
    yield (
        "key",
        "post",
        "/api/v1/keys",
        lambda t: {"name": SPOOFED, "permissions": ["projects:read"]},
        "name",
    )
    yield (
        "rename key",
        "patch",
        lambda t: f"/api/v1/keys/{t.key.pk}",
        lambda t: {"name": SPOOFED},
        "name",
    )


API_CASES = {case[0]: case[1:] for case in _api_cases()}


@pytest.mark.parametrize(
    ("method", "path", "body", "field"), API_CASES.values(), ids=API_CASES.keys()
)
def test_api_refuses_unsafe_names_naming_the_field(org, method, path, body, field):
    """Every API body field that is a name refuses a direction override: 422 naming the field."""
    tree = build_tree(org)
    tree.app = AppFactory(project=tree.project, api_key_access="can_edit")
    tree.key, _ = operator_key(org, permissions=ALL, name="target of renames")
    _key, token = operator_key(org, permissions=ALL, name="caller")
    before = row_counts()
    path = path(tree) if callable(path) else path
    response = getattr(Client(), method)(
        path,
        data=json.dumps(body(tree)),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 422
    assert response.json()["error"] == {"code": "invalid_request", "message": f"{field}: {MESSAGE}"}
    assert row_counts() == before
    assert SPOOFED not in _names()


@pytest.mark.parametrize("field", ["client", "host"])
def test_a_login_code_is_refused_for_an_unsafe_client_or_host(db, field):
    """`keyportal login`'s client and host are shown to the approver and name the key: an
    unsafe one is refused before any code is given."""
    body = {"client": "keyportal-cli/0.1.0", "host": "laptop.local", field: f"laptop{RLO}"}
    response = Client().post("/api/v1/device/code", body, content_type="application/json")
    assert response.status_code == 422
    assert response.json()["error"]["message"] == f"{field}: {MESSAGE}"
    assert not DeviceAuthorization.objects.exists()


# The services behind the doors ----------------------------------------------------------------


def _service_cases() -> dict[str, Callable]:
    return {
        "organization_create": lambda org, tree: organization_create(
            actor=Actor(user=org.owner), name=SPOOFED
        ),
        "organization_rename": lambda org, tree: organization_rename(
            actor=Actor(user=org.owner), organization=org.organization, name=SPOOFED
        ),
        "user_signup": lambda org, tree: user_signup(
            email="new@example.test",
            display_name=SPOOFED,
            password="analytical-engine-1843",
            organization_name=None,
        ),
        "service_account_create": lambda org, tree: service_account_create(
            actor=Actor(user=org.owner), organization=org.organization, name=SPOOFED
        ),
        "service_account_update": lambda org, tree: service_account_update(
            actor=Actor(user=org.owner),
            service_account=tree.account,
            name=SPOOFED,
            description="",
        ),
        "team_create": lambda org, tree: project_services.team_create(
            actor=Actor(user=org.owner), organization=org.organization, name=SPOOFED
        ),
        "project_create": lambda org, tree: project_services.project_create(
            actor=Actor(user=org.owner), team=tree.project.team, name=SPOOFED
        ),
        "target_create": lambda org, tree: project_services.target_create(
            actor=Actor(user=org.owner), project=tree.project, name=SPOOFED
        ),
        "environment_create": lambda org, tree: project_services.environment_create(
            actor=Actor(user=org.owner), target=tree.target, name=SPOOFED
        ),
        "app_create": lambda org, tree: project_services.app_create(
            actor=Actor(user=org.owner), project=tree.project, name=SPOOFED, slug="spoof"
        ),
        "hierarchy_rename": lambda org, tree: project_services.hierarchy_rename(
            actor=Actor(user=org.owner), obj=tree.app, name=SPOOFED
        ),
    }


SERVICE_CASES = _service_cases()


@pytest.mark.parametrize("call", SERVICE_CASES.values(), ids=SERVICE_CASES.keys())
def test_services_refuse_unsafe_names(org, named_tree, call):
    """The services refuse an unsafe name themselves, whichever door called them."""
    before = row_counts()
    with pytest.raises(ValidationError) as caught:
        call(org, named_tree)
    assert MESSAGE in caught.value.messages
    assert row_counts() == before
    assert SPOOFED not in _names()


def test_a_refused_rename_keeps_the_old_name_on_the_object(org, named_tree):
    """A refused rename leaves the object as it was, in memory too."""
    with pytest.raises(ValidationError):
        project_services.hierarchy_rename(
            actor=Actor(user=org.owner), obj=named_tree.app, name=SPOOFED
        )
    assert named_tree.app.name == "Storefront"
