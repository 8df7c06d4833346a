"""Logging in: one message for every failure, and the lock after five failures."""

from __future__ import annotations

import re

import pytest
from axes.models import AccessAttempt
from axes.utils import reset
from django.conf import settings
from django.test import Client
from django.urls import reverse

from accounts.forms import INVALID_LOGIN
from tests.accounts.helpers import page_text
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

LOGIN_URL = reverse("login")
LIMIT = 5


@pytest.fixture(autouse=True)
def _fresh_axes_state():
    """Start and end every test with no recorded login failures."""
    reset()
    yield
    reset()


@pytest.fixture
def person():
    return UserFactory(email="ada@example.test")


def _card(response) -> str:
    """Return the lockout page's text without its per-request nonce and CSRF token."""
    return re.sub(r'(nonce="|x-csrftoken": ")[^"]*', "", page_text(response))


def attempt(client: Client, email: str, password: str):
    return client.post(LOGIN_URL, {"username": email, "password": password})


def test_tests_count_failures_in_the_database():
    """Without REDIS_URL the counters live in the database, shared by every worker."""
    assert settings.AXES_HANDLER == "axes.handlers.database.AxesDatabaseHandler"
    assert settings.AXES_FAILURE_LIMIT == LIMIT


def test_correct_login_works(client, person):
    """The right email and password log the person in."""
    response = attempt(client, "ada@example.test", PASSWORD)
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(person.pk)


def test_wrong_password_and_unknown_email_read_the_same(client, person):
    """A wrong password and an unknown email get the very same message and status."""
    wrong_password = attempt(client, "ada@example.test", "not-the-password")
    unknown_email = attempt(client, "nobody@example.test", "not-the-password")

    assert wrong_password.status_code == unknown_email.status_code == 200
    assert wrong_password.context["form"].non_field_errors() == [INVALID_LOGIN]
    assert unknown_email.context["form"].non_field_errors() == [INVALID_LOGIN]
    assert INVALID_LOGIN in page_text(wrong_password)
    assert INVALID_LOGIN in page_text(unknown_email)


def test_inactive_account_reads_like_a_wrong_password(client):
    """A deactivated account gets the same message as a wrong password."""
    UserFactory(email="gone@example.test", is_active=False)
    response = attempt(client, "gone@example.test", PASSWORD)
    assert response.status_code == 200
    assert INVALID_LOGIN in page_text(response)
    assert "_auth_user_id" not in client.session


def test_failed_login_keeps_the_email_typed(client, person):
    """After a failure the email field still holds what was typed."""
    response = attempt(client, "ada@example.test", "wrong")
    assert 'value="ada@example.test"' in page_text(response)


@pytest.mark.parametrize("email", ["ada@example.test", "nobody@example.test"])
def test_sixth_attempt_after_five_failures_is_locked(client, person, email):
    """After five failures for one email from one address the next attempt answers 429."""
    for _ in range(LIMIT - 1):
        response = attempt(client, email, "wrong")
        assert response.status_code == 200
        assert INVALID_LOGIN in page_text(response)
    attempt(client, email, "wrong")

    response = attempt(client, email, "wrong")
    assert response.status_code == 429
    text = page_text(response)
    assert "Too many attempts" in text
    assert "Wait 15 minutes" in text


def test_locked_email_refuses_even_the_right_password(client, person):
    """Once locked, even the correct password answers 429 and logs nobody in."""
    for _ in range(LIMIT):
        attempt(client, "ada@example.test", "wrong")
    response = attempt(client, "ada@example.test", PASSWORD)
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_lock_is_the_same_whether_the_account_exists_or_not(client, person):
    """A locked existing account and a locked unknown email answer alike."""
    responses = []
    for email in ("ada@example.test", "nobody@example.test"):
        for _ in range(LIMIT):
            attempt(client, email, "wrong")
        responses.append(attempt(client, email, "wrong"))
    assert [r.status_code for r in responses] == [429, 429]
    assert _card(responses[0]) == _card(responses[1])


def test_correct_login_works_just_before_the_limit(client, person):
    """Four failures do not stop the right password; success clears the counter."""
    for _ in range(LIMIT - 1):
        attempt(client, "ada@example.test", "wrong")
    response = attempt(client, "ada@example.test", PASSWORD)
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(person.pk)
    assert not AccessAttempt.objects.filter(username="ada@example.test").exists()


def test_lock_is_per_email(client, person):
    """Failures for one email do not lock another email from the same address."""
    UserFactory(email="grace@example.test")
    for _ in range(LIMIT):
        attempt(client, "ada@example.test", "wrong")
    response = attempt(client, "grace@example.test", PASSWORD)
    assert response.status_code == 302


def test_lock_is_per_address(person):
    """Failures from one address do not lock the same email from another address."""
    attacker = Client(REMOTE_ADDR="203.0.113.9")
    for _ in range(LIMIT):
        attempt(attacker, "ada@example.test", "wrong")
    assert attempt(attacker, "ada@example.test", PASSWORD).status_code == 429

    owner = Client(REMOTE_ADDR="198.51.100.7")
    response = attempt(owner, "ada@example.test", PASSWORD)
    assert response.status_code == 302


def test_login_email_is_case_insensitive(client, person):
    """An email typed with capitals logs in, as signup stores emails in lower case."""
    response = attempt(client, "Ada@Example.test", PASSWORD)
    assert response.status_code == 302
