"""The organization key policy page: owners only; saving changes what new keys may be."""

from __future__ import annotations

import re

import pytest

from accounts.models import AuditEvent
from apikeys.models import KeyKind, KeyPolicy
from apikeys.policy import Policy, policy_for
from tests.accounts.helpers import is_fragment, page_text
from tests.apikeys.conftest import POLICY_URL, create_data, create_url, key_counts

pytestmark = pytest.mark.django_db

SAVED = "The key policy has been saved. Existing keys are flagged, not changed."


def policy_data(**rows: tuple[bool, int | None]) -> dict:
    """Return the whole policy form: the defaults, with `rows` (kind=(require, days)) changed."""
    values = {
        "user": (True, 30),
        "svc": (False, None),
        "org": (False, None),
        "project": (False, None),
    }
    values.update(rows)
    data = {}
    for kind, (require, days) in values.items():
        if require:
            data[f"{kind}-require_expiry"] = "on"
        data[f"{kind}-max_lifetime_days"] = "" if days is None else str(days)
    return data


def test_owner_sees_the_policy_with_its_defaults(client_for, org):
    """The page lists each kind of key; personal keys require expiry within 30 days."""
    response = client_for(org.owner).get(POLICY_URL)

    assert response.status_code == 200
    body = response.content.decode()
    for label in ("Personal", "Service account", "Organization", "Project"):
        assert label in page_text(response)
    assert 'name="user-require_expiry" id="id_user-require_expiry" checked' in body
    assert 'name="user-max_lifetime_days" value="30"' in body
    assert 'name="org-require_expiry" id="id_org-require_expiry">' in body


@pytest.mark.parametrize("role", ["admin", "member"])
def test_only_owners_reach_the_policy(client_for, org, role):
    """Admins and members get 404 for the page and for a POST, which changes nothing."""
    client = client_for(getattr(org, role))
    before = key_counts()

    assert client.get(POLICY_URL).status_code == 404
    assert client.post(POLICY_URL, policy_data(org=(True, 10))).status_code == 404
    assert key_counts() == before


def test_other_organizations_policy_is_404(client_for, org, other_org):
    """An owner cannot open another organization's policy."""
    assert client_for(org.owner).get("/o/globex/api-keys/policy/").status_code == 404


def test_saving_changes_the_policy_and_records_it(client_for, org):
    """Saving stores the changed kinds, writes one history row each, and says so."""
    client = client_for(org.owner)

    response = client.post(POLICY_URL, policy_data(org=(True, 90)), REMOTE_ADDR="192.0.2.8")

    assert response.status_code == 302
    assert response.url == POLICY_URL
    assert policy_for(organization=org.organization, kind=KeyKind.ORGANIZATION) == Policy(True, 90)
    assert KeyPolicy.objects.count() == 1
    event = AuditEvent.objects.get(action="key_policy.updated")
    assert (event.actor_user, event.origin, event.ip_address) == (org.owner, "web", "192.0.2.8")
    assert event.target_type == "keypolicy"
    assert event.detail == {
        "kind": "org",
        "require_expiry": True,
        "max_lifetime_days": 90,
        "disable_unused_after_days": None,
        "default_rate_limit": None,
    }
    assert SAVED in page_text(client.get(response.url))


def test_relaxing_personal_keys(client_for, org):
    """An owner may let personal keys never expire; the create form then offers Never."""
    client_for(org.owner).post(POLICY_URL, policy_data(user=(False, None)))

    assert policy_for(organization=org.organization, kind=KeyKind.USER) == Policy()
    body = client_for(org.member).get(create_url("user")).content.decode()
    assert '<option value="never"' in body


def test_saved_policy_applies_to_the_create_form(client_for, org):
    """After organization keys are capped at 60 days, Never and 1 year are refused."""
    client_for(org.owner).post(POLICY_URL, policy_data(org=(True, 60)))
    client = client_for(org.admin)
    before = key_counts()

    body = client.get(create_url("org")).content.decode()
    for refused in ("never", "90", "365"):
        assert f'<option value="{refused}"' not in body
        response = client.post(create_url("org"), create_data(expiration=refused))
        assert response.status_code == 422
        assert "Choose an expiration the policy allows." in page_text(response)
    assert key_counts() == before
    assert client.post(create_url("org"), create_data(expiration="60")).status_code == 201


@pytest.mark.parametrize(
    ("days", "message"),
    [
        ("0", "Enter a number of days from 1 to 3650."),
        ("3651", "Enter a number of days from 1 to 3650."),
        ("-3", "Enter a number of days from 1 to 3650."),
        ("ten", "Enter a whole number of days."),
        ("1.5", "Enter a whole number of days."),
    ],
)
def test_bad_lifetime_is_refused(client_for, org, days, message):
    """A lifetime outside 1 to 3650 whole days is refused with the message; nothing is saved."""
    data = policy_data(org=(True, None))
    data["org-max_lifetime_days"] = days
    before = key_counts()

    response = client_for(org.owner).post(POLICY_URL, data)

    assert message in page_text(response)
    assert f'value="{days}"' in response.content.decode()
    assert key_counts() == before


def test_bad_lifetime_answers_422(client_for, org):
    """Like every other form of the console, a refused policy answers 422."""
    data = policy_data(org=(True, None))
    data["org-max_lifetime_days"] = "0"

    assert client_for(org.owner).post(POLICY_URL, data).status_code == 422


def test_an_error_is_announced_by_its_field(client_for, org):
    """The refused field is marked invalid and described by its error, which sits beside it."""
    data = policy_data(org=(True, None))
    data["org-max_lifetime_days"] = "0"

    body = client_for(org.owner).post(POLICY_URL, data).content.decode()

    field = re.search(r'<input[^>]*name="org-max_lifetime_days"[^>]*>', body).group()
    assert 'aria-invalid="true"' in field
    assert 'aria-describedby="id_org-max_lifetime_days_error"' in field
    assert '<p class="error" id="id_org-max_lifetime_days_error">' in body


def test_htmx_get_returns_the_form_fragment(client_for, org, htmx_headers):
    """An htmx request for the policy page gets the form alone."""
    response = client_for(org.owner).get(POLICY_URL, headers=htmx_headers)

    assert is_fragment(response)
    assert 'id="policy-form"' in response.content.decode()


def test_post_without_csrf_token_is_refused(client_for, org):
    """Saving without the CSRF token is refused and changes nothing."""
    response = client_for(org.owner, enforce_csrf_checks=True).post(
        POLICY_URL, policy_data(org=(True, 10))
    )

    assert response.status_code == 403
    assert not KeyPolicy.objects.exists()


def test_anonymous_is_sent_to_login(client_for, org):
    """An anonymous visitor is sent to log in."""
    response = client_for(None).get(POLICY_URL)
    assert response.status_code == 302
    assert response.url == f"/login/?next={POLICY_URL}"
