"""Signing up (an email first, then a link to choose the password), another organization, home."""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import mail, signing
from django.test import Client
from django.urls import reverse
from django.utils.html import strip_tags

from accounts.models import AuditEvent, Membership, Organization, Role, Team, User
from tests.accounts.helpers import page_text, row_counts
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

# Signup mail goes out once the request's work commits (keyportal.mail): these tests commit.
pytestmark = pytest.mark.django_db(transaction=True)

SIGNUP_URL = reverse("signup")
GOOD_PASSWORD = "analytical-engine-1843"
CONFIRM_LINK = re.compile(r"http://testserver/signup/confirm/\?token=\S+")
SENT_TEMPLATE = "accounts/signup_sent.html"


def signup_data(**overrides) -> dict:
    data = {
        "display_name": "Ada Lovelace",
        "email": "ada@example.test",
        "organization_name": "Engines Ltd",
    }
    data.update(overrides)
    return data


def confirm_link(client, **overrides) -> str:
    """Ask for an account and return the path of the link the email carries."""
    mail.outbox.clear()
    response = client.post(SIGNUP_URL, signup_data(**overrides))
    assert response.status_code == 200
    [message] = mail.outbox
    return CONFIRM_LINK.search(message.body).group().removeprefix("http://testserver")


def sign_up(client, password: str = GOOD_PASSWORD, **overrides):
    """Go through both steps; return the response to choosing the password."""
    return client.post(confirm_link(client, **overrides), {"password": password})


def page_templates(response) -> list[str]:
    """Return the templates the page was rendered from, leaving out the email's."""
    return [t.name for t in response.templates if not t.name.startswith("accounts/email/")]


def without_per_response_values(text: str) -> str:
    """Return the page without its CSRF token and script nonces, which change every time."""
    text = re.sub(r'(csrftoken": "|csrfmiddlewaretoken" value=")[^"]+', r"\1", text)
    return re.sub(r'nonce="[^"]+"', "nonce", text)


# Step 1: the email --------------------------------------------------------------------------


def test_signup_page_asks_for_name_email_and_organization(client):
    """The signup page is public and asks for a name, an email and an organization, no password."""
    response = client.get(SIGNUP_URL)
    assert response.status_code == 200
    text = response.content.decode()
    for name in ("display_name", "email", "organization_name"):
        assert f'name="{name}"' in text
        assert f'for="id_{name}"' in text
    assert 'name="password"' not in text


def test_signup_answers_check_your_inbox_and_creates_nothing(client):
    """A new address gets "Check your inbox" and a confirmation link; no account exists yet."""
    before = row_counts()
    response = client.post(SIGNUP_URL, signup_data(email="Ada@Example.test"))

    assert response.status_code == 200
    assert page_templates(response)[0] == SENT_TEMPLATE
    assert "Check your inbox at ada@example.test." in strip_tags(page_text(response))
    assert row_counts() == before
    assert "_auth_user_id" not in client.session
    [message] = mail.outbox
    assert message.to == ["ada@example.test"]
    assert CONFIRM_LINK.search(message.body)
    assert "24 hours" in message.body


def test_signup_answer_is_the_same_whether_or_not_the_email_has_an_account(client):
    """Status, template and page are the same for a new address and for one with an account."""
    UserFactory(email="taken@example.test")
    new = client.post(SIGNUP_URL, signup_data(email="fresh@example.test"))
    taken = client.post(SIGNUP_URL, signup_data(email="TAKEN@example.test"))

    assert new.status_code == taken.status_code == 200
    assert page_templates(new) == page_templates(taken)
    assert page_templates(new)[0] == SENT_TEMPLATE
    assert without_per_response_values(page_text(new)).replace(
        "fresh@", "taken@"
    ) == without_per_response_values(page_text(taken))
    assert [m.to for m in mail.outbox] == [["fresh@example.test"], ["taken@example.test"]]


def test_an_existing_account_gets_an_email_and_nothing_changes(client):
    """The owner of a taken address is told someone tried, with a link to log in; nothing else."""
    person = UserFactory(email="taken@example.test")
    password = person.password
    before = row_counts()
    client.post(SIGNUP_URL, signup_data(email="Taken@Example.test"))

    [message] = mail.outbox
    assert message.to == ["taken@example.test"]
    assert "tried to sign up" in message.body
    assert "http://testserver/login/" in message.body
    assert not CONFIRM_LINK.search(message.body)
    assert row_counts() == before
    person.refresh_from_db()
    assert person.password == password
    assert "_auth_user_id" not in client.session


def test_the_link_carries_the_answers_but_no_password(client):
    """The signed link holds the email, name and organization name, and nothing else."""
    path = confirm_link(client)
    token = parse_qs(urlsplit(path).query)["token"][0]
    assert signing.loads(token, salt="keyportal.accounts.signup") == {
        "email": "ada@example.test",
        "display_name": "Ada Lovelace",
        "organization_name": "Engines Ltd",
    }


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("email", "not-an-email", "Enter a valid email address, like ada@example.com."),
        ("email", "", "Email is required."),
        ("display_name", "", "Your name is required."),
        ("display_name", "   ", "Your name is required."),
        ("display_name", "n" * 101, "Your name must be at most 100 characters."),
        ("organization_name", "", "Organization name is required."),
        ("organization_name", "o" * 101, "Organization name must be at most 100 characters."),
    ],
)
def test_signup_bad_input_sends_nothing(client, field, value, message):
    """Each bad field gets its message next to it; what was typed stays; no email is sent."""
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
    assert mail.outbox == []


def test_signup_emails_to_one_address_are_limited(db):
    """Past five requests an hour for one email, the page says to wait and no email goes out."""
    statuses = [
        Client(REMOTE_ADDR=f"192.0.2.{n}").post(SIGNUP_URL, signup_data()).status_code
        for n in range(6)
    ]
    assert statuses == [200] * 5 + [429]
    assert len(mail.outbox) == 5


def test_signup_emails_from_one_client_address_are_limited(db):
    """Past twenty requests an hour from one client address, the page says to wait."""
    client = Client(REMOTE_ADDR="192.0.2.9")
    statuses = [
        client.post(SIGNUP_URL, signup_data(email=f"p{n}@example.test")).status_code
        for n in range(21)
    ]
    assert statuses == [200] * 20 + [429]
    assert "Too many sign-up requests" in page_text(client.post(SIGNUP_URL, signup_data()))
    assert len(mail.outbox) == 20


def test_signup_without_csrf_token_is_refused(db):
    """A signup POST without the CSRF token is refused and sends nothing."""
    response = Client(enforce_csrf_checks=True).post(SIGNUP_URL, signup_data())
    assert response.status_code == 403
    assert mail.outbox == []


def test_signed_in_person_is_sent_home_from_signup(client_for, org):
    """A person already logged in is sent away from the signup page."""
    response = client_for(org.owner).get(SIGNUP_URL)
    assert response.status_code == 302
    assert response.url == reverse("home")


# Step 2: the link and the password ----------------------------------------------------------


def test_the_link_shows_a_page_to_choose_the_password(client):
    """Following the link shows the answers of step 1 and a labelled password field."""
    response = client.get(confirm_link(client))
    assert response.status_code == 200
    text = page_text(response)
    assert "Choose a password" in text
    assert "ada@example.test" in text
    assert "Engines Ltd" in text
    assert '<label for="id_password">Password</label>' in text
    assert not User.objects.exists()


def test_signup_creates_person_organization_and_ownership(client):
    """Choosing a password creates the person, their organization with them as owner, logs in."""
    response = sign_up(client, email="Ada@Example.test")

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
    sign_up(client)
    organization = Organization.objects.get()
    assert list(Team.objects.filter(organization=organization).values_list("name", flat=True)) == [
        "General"
    ]
    event = AuditEvent.objects.get(organization=organization)
    assert event.action == "organization.created"
    assert event.actor_user == User.objects.get()
    assert event.ip_address == "127.0.0.1"


def test_signup_lands_on_the_console_with_a_welcome(client):
    """After choosing a password the person lands on their projects page with a welcome."""
    path = confirm_link(client)
    response = client.post(path, {"password": GOOD_PASSWORD}, follow=True)
    assert response.status_code == 200
    assert "Welcome to keyportal. Engines Ltd is ready." in page_text(response)


def test_signup_slug_is_unique(client):
    """An organization name already used elsewhere gets a numbered slug."""
    OrganizationFactory(name="Engines Ltd", slug="engines-ltd")
    sign_up(client)
    assert Organization.objects.filter(slug="engines-ltd-2").exists()


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("", "Password is required."),
        ("short1", "This password is too short. It must contain at least 8 characters."),
        ("password", "This password is too common."),
        ("84736251947", "This password is entirely numeric."),
        ("ada.lovelace", "The password is too similar to the"),
    ],
)
def test_signup_weak_password_saves_nothing(client, password, message):
    """A weak password is refused next to the password field; nothing is saved; the link works."""
    path = confirm_link(client, email="ada.lovelace@example.test")
    before = row_counts()
    response = client.post(path, {"password": password})

    assert response.status_code == 422
    assert any(error.startswith(message) for error in response.context["form"].errors["password"])
    assert 'id="id_password_error"' in page_text(response)
    assert row_counts() == before
    assert client.post(path, {"password": GOOD_PASSWORD}).status_code == 302


def test_the_link_works_once(client):
    """Once the account exists, the link sends the person to log in, saying why; nothing more."""
    path = confirm_link(client)
    client.post(path, {"password": GOOD_PASSWORD})
    other = Client()
    before = row_counts()

    for response in (other.get(path), other.post(path, {"password": "x-9-y-8-z-7"})):
        assert response.status_code == 302
        assert response.url == reverse("login")
    response = other.get(path, follow=True)
    assert "An account for ada@example.test already exists. Log in." in page_text(response)
    assert row_counts() == before
    assert not User.objects.get().check_password("x-9-y-8-z-7")


def test_the_link_expires_after_24_hours(client, monkeypatch):
    """A link older than 24 hours is refused with 410 and creates nothing."""
    now = time.time()
    monkeypatch.setattr(signing.time, "time", lambda: now - 24 * 3600 - 60)
    path = confirm_link(client)
    monkeypatch.setattr(signing.time, "time", lambda: now)

    for response in (client.get(path), client.post(path, {"password": GOOD_PASSWORD})):
        assert response.status_code == 410
        assert "This link has expired. Sign up again for a new one." in page_text(response)
    assert not User.objects.exists()


@pytest.mark.parametrize("token", ["", "made-up", "TAMPER"])
def test_a_made_up_or_altered_link_is_refused(client, token):
    """A link keyportal did not sign, or one altered on the way, is refused with 410."""
    if token == "TAMPER":
        signed = parse_qs(urlsplit(confirm_link(client)).query)["token"][0]
        token = signed[:-2] + ("yy" if signed.endswith("xx") else "xx")
    response = client.post(
        f"{reverse('signup_confirm')}?token={token}", {"password": GOOD_PASSWORD}
    )
    assert response.status_code == 410
    assert "This link is not valid. Sign up again for a new one." in page_text(response)
    assert not User.objects.exists()


def test_choosing_the_password_without_csrf_token_is_refused(client):
    """The password POST without the CSRF token is refused and creates nothing."""
    path = confirm_link(client)
    response = Client(enforce_csrf_checks=True).post(path, {"password": GOOD_PASSWORD})
    assert response.status_code == 403
    assert not User.objects.exists()


def test_signed_in_person_is_sent_home_from_the_link(client, client_for, org):
    """A person already logged in who opens a signup link is sent home, nothing created."""
    path = confirm_link(client)
    response = client_for(org.owner).post(path, {"password": GOOD_PASSWORD})
    assert response.status_code == 302
    assert response.url == reverse("home")
    assert not User.objects.filter(email="ada@example.test").exists()


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
