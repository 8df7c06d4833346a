"""Console pages for secrets: names and versions for everyone, writes for owners and admins."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from accounts.access import Actor
from accounts.models import AuditEvent, Origin
from projects.models import Secret, SecretVersion
from projects.secrets import secret_decrypt, secret_set, secret_version_get
from tests.accounts.helpers import is_fragment, page_text, toasts
from tests.projects.secret_helpers import environment_in
from tests.security.conftest import database_state

pytestmark = pytest.mark.django_db

VALUE = "s3cr3t-value-never-shown"


@pytest.fixture
def environment(org):
    return environment_in(org)


@pytest.fixture
def secret(org, environment) -> Secret:
    """Return DATABASE_URL at version 2, set once from the web and once through the API."""
    secret_set(
        actor=Actor(user=org.owner), environment=environment, name="DATABASE_URL", value=VALUE
    )
    api = Actor(user=None, origin=Origin.API, label="deploy (sk-org-...wxyz)")
    return secret_set(
        actor=api, environment=environment, name="DATABASE_URL", value=VALUE + "-2"
    ).secret


def list_url(environment, org: str = "acme") -> str:
    return reverse("secret_list", kwargs={"org": org, "pk": environment.pk})


def versions_url(secret: Secret) -> str:
    return reverse(
        "secret_versions", kwargs={"org": "acme", "pk": secret.environment_id, "name": secret.name}
    )


def purge_url(secret: Secret) -> str:
    return reverse(
        "secret_purge", kwargs={"org": "acme", "pk": secret.environment_id, "name": secret.name}
    )


def restore_url(secret: Secret, version: int) -> str:
    return reverse(
        "secret_restore",
        kwargs={
            "org": "acme",
            "pk": secret.environment_id,
            "name": secret.name,
            "version": version,
        },
    )


def current_value(environment, name: str) -> str:
    return secret_decrypt(version=secret_version_get(environment=environment, name=name))


# Who sees what -------------------------------------------------------------------------------


def test_anonymous_is_sent_to_login(environment):
    """Anonymous people are sent to log in."""
    response = Client().get(list_url(environment))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_member_sees_names_versions_and_last_change_but_no_controls(client_for, org, secret):
    """Members see each name, its version, when and from where it changed; no form, no delete."""
    response = client_for(org.member).get(list_url(secret.environment))

    assert response.status_code == 200
    text = page_text(response)
    assert "DATABASE_URL" in text
    assert "v2" in text
    assert "API" in text
    assert "deploy (sk-org-...wxyz)" in text
    assert "<time datetime=" in text
    assert "Values are never shown in the console." in text
    assert "secrets:decrypt" in text
    assert f"own key <code>{secret.environment.encryption_key.key_id}</code>" in text
    assert "Set a secret" not in text
    assert "/delete/" not in text
    assert VALUE not in text


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_owners_and_admins_get_the_form_and_delete_links(client_for, org, secret, role):
    """Owners and admins see the set form and a delete link per secret."""
    text = page_text(client_for(getattr(org, role)).get(list_url(secret.environment)))

    assert "Set a secret" in text
    assert purge_url(secret) in text
    assert 'type="password"' not in text  # the value is a masked textarea, never an input
    assert 'class="mono secret-value"' in text
    assert VALUE not in text


def test_the_empty_list_says_who_sets_secrets(client_for, org, environment):
    """With no secret, members read that owners and admins set them."""
    text = page_text(client_for(org.member).get(list_url(environment)))
    assert "No secret yet" in text
    assert "Owners and admins set secrets." in text


def test_project_page_links_each_environment_to_its_secrets(client_for, org, environment):
    """The project page links every environment's name to its secrets page."""
    url = reverse("project_detail", kwargs={"org": "acme", "pk": environment.target.project_id})
    response = client_for(org.member).get(url)
    assert f'href="{list_url(environment)}">production</a>' in response.content.decode()


def test_htmx_request_gets_only_the_fragment(client_for, org, secret, htmx_headers):
    """An htmx request for the list gets the secret-list fragment alone."""
    response = client_for(org.admin).get(list_url(secret.environment), headers=htmx_headers)
    assert response.status_code == 200
    assert is_fragment(response)
    assert 'id="secret-list"' in response.content.decode()


# Setting values ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_owners_and_admins_set_a_value(client_for, org, environment, role):
    """A valid name and value make version 1, recorded as from the web by that person."""
    client = client_for(getattr(org, role))
    response = client.post(list_url(environment), {"name": "API_TOKEN", "value": VALUE})

    assert response.status_code == 302
    assert response.url == list_url(environment)
    assert current_value(environment, "API_TOKEN") == VALUE
    version = SecretVersion.objects.get()
    assert (version.origin, version.created_by) == (Origin.WEB, getattr(org, role))
    followed = client.get(response.url)
    assert "Secret “API_TOKEN” saved as version 1." in page_text(followed)
    assert VALUE not in followed.content.decode()


def test_setting_an_existing_name_adds_a_version(client_for, org, secret):
    """Posting an existing name makes its next version."""
    response = client_for(org.admin).post(
        list_url(secret.environment), {"name": "DATABASE_URL", "value": "new"}
    )
    assert response.status_code == 302
    assert secret.versions.count() == 3
    assert current_value(secret.environment, "DATABASE_URL") == "new"


def test_htmx_set_answers_the_fragment_with_an_empty_form_and_a_toast(
    client_for, org, environment, htmx_headers
):
    """An htmx set re-renders the list with the new secret, an empty form and a toast."""
    response = client_for(org.admin).post(
        list_url(environment), {"name": "API_TOKEN", "value": VALUE}, headers=htmx_headers
    )

    assert response.status_code == 200
    assert is_fragment(response)
    html = response.content.decode()
    assert "API_TOKEN" in html
    assert VALUE not in html
    assert 'name="name"' in html and 'value="API_TOKEN"' not in html
    assert toasts(response) == ["Secret “API_TOKEN” saved as version 1."]


def test_line_breaks_from_the_browser_are_kept_as_newlines(client_for, org, environment):
    """A textarea's CRLF line breaks are stored as LF, as in a pasted PEM key."""
    pem = "-----BEGIN KEY-----\r\nabc\r\n-----END KEY-----\r\n"
    client_for(org.admin).post(list_url(environment), {"name": "TLS_KEY", "value": pem})
    assert current_value(environment, "TLS_KEY") == pem.replace("\r\n", "\n")


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"name": "1BAD", "value": VALUE}, "name", "environment variable name"),
        ({"name": "BAD-NAME", "value": VALUE}, "name", "environment variable name"),
        ({"name": "x" * 101, "value": VALUE}, "name", "at most 100 characters"),
        ({"name": "", "value": VALUE}, "name", "Name is required."),
        ({"name": "OK", "value": ""}, "value", "Value is required."),
        ({"name": "OK", "value": VALUE + "x" * 65536}, "value", "at most 64 KB"),
        ({"name": "OK", "value": VALUE + "\x00"}, "value", "Null characters are not allowed."),
    ],
    ids=["digit-first", "hyphen", "too-long-name", "no-name", "no-value", "too-big", "nul"],
)
def test_bad_input_is_refused_without_echoing_the_value(
    client_for, org, environment, data, field, message
):
    """Bad input answers 422 with the message at its field, writes nothing, never echoes the value."""
    client = client_for(org.admin)
    before = database_state()

    response = client.post(list_url(environment), data)

    assert response.status_code == 422
    text = page_text(response)
    assert message in text
    assert VALUE not in text
    assert "For safety the value you typed was not kept" in text
    assert database_state() == before


def test_member_cannot_set_a_value(client_for, org, environment):
    """A member's POST is refused with 403 and writes nothing."""
    client = client_for(org.member)
    before = database_state()
    response = client.post(list_url(environment), {"name": "A", "value": VALUE})
    assert response.status_code == 403
    assert database_state() == before


def test_a_post_without_csrf_token_is_refused(org, environment):
    """A POST without a CSRF token is refused and writes nothing."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(org.owner)
    before = database_state()

    response = client.post(list_url(environment), {"name": "A", "value": VALUE})

    assert response.status_code == 403
    assert database_state() == before


# Versions, restore and purge -----------------------------------------------------------------


def test_versions_page_lists_versions_without_values(client_for, org, secret):
    """Everyone sees the versions, newest first, with who set them and from where; no values."""
    response = client_for(org.member).get(versions_url(secret))

    assert response.status_code == 200
    text = page_text(response)
    # Anchored to the table cells: a random nonce or token elsewhere may contain "v1".
    assert text.index("<td>v2") < text.index("<td>v1")
    assert "Current" in text
    assert org.owner.email in text
    assert "deploy (sk-org-...wxyz)" in text
    assert VALUE not in text
    assert "Values are never shown in the console." in text
    assert "/restore/" not in text


def test_admins_get_restore_links_for_old_versions_only(client_for, org, secret):
    """Owners and admins may restore every version but the current one."""
    text = page_text(client_for(org.admin).get(versions_url(secret)))
    assert restore_url(secret, 1) in text
    assert restore_url(secret, 2) not in text


def test_restore_asks_then_makes_a_new_version(client_for, org, secret):
    """GET shows a confirmation; POST restores version 1 as version 3 and says so."""
    client = client_for(org.admin)
    confirm = client.get(restore_url(secret, 1))
    assert confirm.status_code == 200
    assert "Restore version 1 of “DATABASE_URL”?" in page_text(confirm)
    assert VALUE not in confirm.content.decode()

    response = client.post(restore_url(secret, 1))

    assert response.status_code == 302
    assert response.url == versions_url(secret)
    assert current_value(secret.environment, "DATABASE_URL") == VALUE
    assert secret.versions.get(version=3).restored_from == 1
    followed = page_text(client.get(response.url))
    assert "Version 1 of “DATABASE_URL” restored as version 3." in followed
    assert "restored from v1" in followed


def test_purge_asks_then_deletes_every_version(client_for, org, secret):
    """GET shows a confirmation; POST deletes the secret and its versions, with a history row."""
    client = client_for(org.owner)
    confirm = client.get(purge_url(secret))
    assert confirm.status_code == 200
    assert "cannot be restored" in page_text(confirm)

    response = client.post(purge_url(secret))

    assert response.status_code == 302
    assert response.url == list_url(secret.environment)
    assert not Secret.objects.exists()
    assert not SecretVersion.objects.exists()
    assert AuditEvent.objects.filter(action="secret.purged", origin=Origin.WEB).count() == 1
    assert "Secret “DATABASE_URL” and all its versions were deleted." in page_text(
        client.get(response.url)
    )


@pytest.mark.parametrize("url", [purge_url, lambda secret: restore_url(secret, 1)])
def test_member_cannot_purge_or_restore(client_for, org, secret, url):
    """Members get 403 for purge and restore, GET and POST alike, and nothing changes."""
    client = client_for(org.member)
    before = database_state()
    assert client.get(url(secret)).status_code == 403
    assert client.post(url(secret)).status_code == 403
    assert database_state() == before


def test_unknown_secret_or_version_is_404(client_for, org, secret):
    """A name or version that does not exist is 404."""
    client = client_for(org.owner)
    missing = Secret(environment=secret.environment, name="NOPE")
    assert client.get(versions_url(missing)).status_code == 404
    assert client.post(purge_url(missing)).status_code == 404
    assert client.post(restore_url(secret, 7)).status_code == 404


# Other tenants -------------------------------------------------------------------------------


def test_another_organizations_environment_is_404_and_unchanged(client_for, org, other_org):
    """An owner of Acme gets 404 for every secrets page of Globex's environment; nothing changes."""
    theirs = environment_in(other_org, project="Globex Project")
    secret = secret_set(
        actor=Actor(user=other_org.owner), environment=theirs, name="THEIRS", value=VALUE
    ).secret
    client = client_for(org.owner)
    before = database_state()

    responses = [
        client.get(list_url(theirs)),
        client.post(list_url(theirs), {"name": "STOLEN", "value": "x"}),
        client.get(versions_url(secret)),
        client.get(purge_url(secret)),
        client.post(purge_url(secret)),
        client.get(restore_url(secret, 1)),
        client.post(restore_url(secret, 1)),
    ]

    assert [r.status_code for r in responses] == [404] * 7
    assert database_state() == before
    for response in responses:
        assert b"THEIRS" not in response.content
        assert b"Globex" not in response.content
