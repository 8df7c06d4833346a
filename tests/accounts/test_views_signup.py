"""Signing up, creating another organization, and the home redirect."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEvent, Membership, Organization, Role, Team, User
from tests.accounts.helpers import page_text, row_counts
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db

SIGNUP_URL = reverse("signup")
GOOD_PASSWORD = "analytical-engine-1843"


def signup_data(**overrides) -> dict:
    data = {
        "display_name": "Ada Lovelace",
        "email": "ada@example.test",
        "password": GOOD_PASSWORD,
        "organization_name": "Engines Ltd",
    }
    data.update(overrides)
    return data


def test_signup_page_renders(client):
    """The signup page is public and shows its four fields."""
    response = client.get(SIGNUP_URL)
    assert response.status_code == 200
    for name in ("display_name", "email", "password", "organization_name"):
        assert f'name="{name}"' in response.content.decode()


def test_signup_creates_person_organization_and_ownership(client):
    """Signing up creates the person, their organization with them as owner, and logs them in."""
    response = client.post(SIGNUP_URL, signup_data(email="Ada@Example.test"))

    user = User.objects.get()
    assert user.email == "ada@example.test"
    assert user.display_name == "Ada Lovelace"
    assert user.check_password(GOOD_PASSWORD)
    organization = Organization.objects.get()
    assert organization.name == "Engines Ltd"
    assert organization.slug == "engines-ltd"
    membership = Membership.objects.get()
    assert (membership.user, membership.organization, membership.role) == (
        user,
        organization,
        Role.OWNER,
    )
    assert response.status_code == 302
    assert response.url == reverse("project_list", kwargs={"org": "engines-ltd"})
    assert client.session["_auth_user_id"] == str(user.pk)


def test_signup_gives_a_first_team_and_records_history(client):
    """A new organization starts with one team and an "organization.created" history row."""
    client.post(SIGNUP_URL, signup_data())
    organization = Organization.objects.get()
    assert list(Team.objects.filter(organization=organization).values_list("name", flat=True)) == [
        "General"
    ]
    event = AuditEvent.objects.get(organization=organization)
    assert event.action == "organization.created"
    assert event.actor_user == User.objects.get()
    assert event.ip_address == "127.0.0.1"


def test_signup_lands_on_the_console_with_a_welcome(client):
    """After signing up the person lands on their projects page with a welcome message."""
    response = client.post(SIGNUP_URL, signup_data(), follow=True)
    assert response.status_code == 200
    assert "Welcome to keyportal. Engines Ltd is ready." in page_text(response)


def test_signup_slug_is_unique(client):
    """An organization name already used elsewhere gets a numbered slug."""
    OrganizationFactory(name="Engines Ltd", slug="engines-ltd")
    client.post(SIGNUP_URL, signup_data())
    assert Organization.objects.filter(slug="engines-ltd-2").exists()


def test_signed_in_person_is_sent_home_from_signup(client_for, org):
    """A person already logged in is sent away from the signup page."""
    response = client_for(org.owner).get(SIGNUP_URL)
    assert response.status_code == 302
    assert response.url == reverse("home")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("email", "not-an-email", "Enter a valid email address, like ada@example.com."),
        ("email", "", "This field is required."),
        ("display_name", "", "Your name is required."),
        ("display_name", "   ", "Your name is required."),
        ("display_name", "n" * 101, "Your name must be at most 100 characters."),
        ("organization_name", "", "Organization name is required."),
        ("organization_name", "o" * 101, "Organization name must be at most 100 characters."),
    ],
)
def test_signup_bad_input_saves_nothing(client, field, value, message):
    """Each bad field gets its message next to it; what was typed stays; nothing is saved."""
    before = row_counts()
    data = signup_data(**{field: value})
    response = client.post(SIGNUP_URL, data)

    assert response.status_code == 422
    assert response.context["form"].errors[field] == [message]
    text = page_text(response)
    assert f'id="id_{field}_error">{message}' in text
    for typed_field in ("display_name", "email", "organization_name"):
        if data[typed_field].strip():
            assert f'value="{data[typed_field]}"' in text
    assert row_counts() == before
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short1", "This password is too short. It must contain at least 8 characters."),
        ("password", "This password is too common."),
        ("84736251947", "This password is entirely numeric."),
        ("ada.lovelace", "The password is too similar to the"),
    ],
)
def test_signup_weak_password_saves_nothing(client, password, message):
    """A weak password is refused next to the password field; nothing is saved."""
    before = row_counts()
    response = client.post(
        SIGNUP_URL, signup_data(password=password, email="ada.lovelace@example.test")
    )

    assert response.status_code == 422
    assert any(error.startswith(message) for error in response.context["form"].errors["password"])
    text = page_text(response)
    assert 'id="id_password_error"' in text
    assert 'value="ada.lovelace@example.test"' in text
    assert row_counts() == before


@pytest.mark.parametrize("email", ["taken@example.test", "TAKEN@Example.TEST"])
def test_signup_duplicate_email_saves_nothing(client, email):
    """An email already used, in any letter case, is refused next to the email field."""
    UserFactory(email="taken@example.test")
    before = row_counts()
    response = client.post(SIGNUP_URL, signup_data(email=email))

    assert response.status_code == 422
    message = "An account with this email already exists. Log in instead."
    assert response.context["form"].errors["email"] == [message]
    text = page_text(response)
    assert f'id="id_email_error">{message}' in text
    assert 'value="Ada Lovelace"' in text
    assert 'value="Engines Ltd"' in text
    assert row_counts() == before


def test_signup_without_csrf_token_is_refused(db):
    """A signup POST without the CSRF token is refused and saves nothing."""
    response = Client(enforce_csrf_checks=True).post(SIGNUP_URL, signup_data())
    assert response.status_code == 403
    assert not User.objects.exists()


# Another organization ------------------------------------------------------------------------

NEW_ORG_URL = reverse("organization_new")


def test_organization_new_needs_login(client):
    """Anonymous people are sent to log in before creating an organization."""
    response = client.get(NEW_ORG_URL)
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_organization_new_makes_the_person_owner(client_for, org):
    """A logged-in person creates another organization and becomes its owner."""
    client = client_for(org.member)
    response = client.post(NEW_ORG_URL, {"name": "Side Project"})

    organization = Organization.objects.get(name="Side Project")
    assert response.status_code == 302
    assert response.url == reverse("project_list", kwargs={"org": organization.slug})
    assert Membership.objects.get(organization=organization).user == org.member
    assert Membership.objects.get(organization=organization).role == Role.OWNER
    # Being owner elsewhere changes nothing in Acme.
    assert org.membership(org.member).role == Role.MEMBER


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "Organization name is required."),
        ("x" * 101, "Organization name must be at most 100 characters."),
    ],
)
def test_organization_new_bad_name_saves_nothing(client_for, org, value, message):
    """An empty or too long organization name is refused next to the field."""
    before = row_counts()
    response = client_for(org.owner).post(NEW_ORG_URL, {"name": value})
    assert response.status_code == 422
    text = page_text(response)
    assert f'id="id_name_error">{message}' in text
    if value:
        assert f'value="{value}"' in text
    assert row_counts() == before


# Home ----------------------------------------------------------------------------------------


def test_home_without_organization_goes_to_create_one(client_for, outsider):
    """A person without an organization is sent to create one."""
    response = client_for(outsider).get(reverse("home"))
    assert response.status_code == 302
    assert response.url == NEW_ORG_URL


def test_home_goes_to_the_last_organization_used(client_for, org):
    """Home sends the person to the organization they used last."""
    second = OrganizationFactory(name="Zeta", slug="zeta")
    MembershipFactory(organization=second, user=org.member)
    client = client_for(org.member)
    client.get(reverse("project_list", kwargs={"org": "zeta"}))

    response = client.get(reverse("home"))
    assert response.url == reverse("project_list", kwargs={"org": "zeta"})


def test_home_ignores_an_organization_the_person_left(client_for, org):
    """A remembered organization the person no longer belongs to is not used."""
    client = client_for(org.member)
    session = client.session
    session["organization"] = "globex"
    session.save()
    response = client.get(reverse("home"))
    assert response.url == reverse("project_list", kwargs={"org": "acme"})
