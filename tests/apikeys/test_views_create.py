"""Creating keys in the console: the form (in the dialog), bad input, and the reveal shown once."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from django.urls import reverse

from accounts.access import Actor
from accounts.models import AuditEvent
from accounts.services import service_account_set_active
from apikeys.models import ApiKey, KeyKind
from apikeys.permissions import ALL, PERMISSIONS, READ_ONLY, ROLE_PERMISSIONS, ordered
from keyportal_cli.tokens import PREFIXES, token_digest
from tests.accounts.helpers import is_fragment, page_text
from tests.apikeys.conftest import (
    AUDIT_URL,
    ORGANIZATION_KEYS_URL,
    PERSONAL_KEYS_URL,
    create_data,
    create_url,
    detail_url,
    key_counts,
    new_key,
    revealed_token,
    secret_part,
)

pytestmark = pytest.mark.django_db

REVEAL_WARNING = "Important: copy this key now, it will not be shown again."


def place_for(kind: str, tree, bot) -> tuple[str, str]:
    """Return the create URL of a kind of key and the page that lists such keys."""
    match kind:
        case "user":
            return create_url("user"), PERSONAL_KEYS_URL
        case "org":
            return create_url("org"), ORGANIZATION_KEYS_URL
        case "project":
            page = reverse("project_detail", kwargs={"org": "acme", "pk": tree.project.pk})
            return create_url("project", tree.project.pk), page
        case _:
            page = reverse("service_account_detail", kwargs={"org": "acme", "pk": bot.pk})
            return create_url("svc", bot.pk), page


# --- the reveal -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["user", "org", "project", "svc"])
def test_create_reveals_the_key_once_with_no_store(client_for, org, tree, bot, kind):
    """A created key is shown in full once, with the warning and export line, never cached."""
    url, _page = place_for(kind, tree, bot)
    client = client_for(org.admin)

    response = client.post(url, create_data(name="ci key"))

    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"
    token = revealed_token(response)
    assert token.startswith(PREFIXES[kind])
    text = page_text(response)
    assert REVEAL_WARNING in text
    assert f"export KEYPORTAL_API_KEY={token}" in text
    api_key = ApiKey.objects.get()
    assert (api_key.kind, api_key.name, api_key.digest) == (kind, "ci key", token_digest(token))


@pytest.mark.parametrize("kind", ["user", "org", "project", "svc"])
def test_pages_never_show_the_plaintext_again(client_for, org, tree, bot, kind):
    """After the reveal, the list, the key's page, the audit log and the form never show it."""
    url, page = place_for(kind, tree, bot)
    client = client_for(org.admin)
    token = revealed_token(client.post(url, create_data()))
    api_key = ApiKey.objects.get()

    for path in (page, detail_url(api_key), AUDIT_URL, url, PERSONAL_KEYS_URL):
        response = client.get(path)
        assert response.status_code == 200, path
        body = response.content.decode()
        assert secret_part(token) not in body, path
        assert token not in body, path
    assert api_key.preview in page_text(client.get(page))


def test_htmx_create_reveals_only_the_fragment(client_for, org, htmx_headers):
    """In the dialog (htmx), the reveal is the fragment alone, still 201 and no-store."""
    response = client_for(org.member).post(create_url("user"), create_data(), headers=htmx_headers)

    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"
    assert is_fragment(response)
    assert 'id="key-reveal"' in response.content.decode()
    token = revealed_token(response)
    assert f"export KEYPORTAL_API_KEY={token}" in page_text(response)


def test_reveal_page_links_back_to_the_list(client_for, org):
    """Without htmx the reveal page offers a way back to the list it came from."""
    response = client_for(org.member).post(create_url("user"), create_data())
    assert f'href="{PERSONAL_KEYS_URL}"' in response.content.decode()


def test_create_records_the_console_origin_and_address(client_for, org):
    """A key made in the console is from the web, by the person, from their address."""
    client_for(org.member).post(create_url("user"), create_data(), REMOTE_ADDR="192.0.2.44")

    api_key = ApiKey.objects.get()
    assert (api_key.origin, api_key.created_by, api_key.owner_user) == (
        "web",
        org.member,
        org.member,
    )
    event = AuditEvent.objects.get(action="api_key.created")
    assert (event.actor_user, event.origin, event.ip_address) == (org.member, "web", "192.0.2.44")


# --- the form -------------------------------------------------------------------------------


def test_htmx_get_returns_only_the_form(client_for, org, htmx_headers):
    """Opening the dialog fetches the form fragment alone."""
    response = client_for(org.member).get(create_url("user"), headers=htmx_headers)

    assert response.status_code == 200
    assert is_fragment(response)
    body = response.content.decode()
    assert 'id="key-form"' in body
    assert "Create an API key" in body


def test_plain_get_returns_the_whole_page(client_for, org):
    """Without htmx the form is a page of its own."""
    response = client_for(org.member).get(create_url("user"))
    assert response.status_code == 200
    assert not is_fragment(response)
    assert 'id="key-form"' in response.content.decode()


def test_personal_form_offers_only_what_the_policy_allows(client_for, org):
    """Personal keys must expire within 30 days: no Never, no 60 days or longer."""
    body = client_for(org.member).get(create_url("user")).content.decode()

    assert 'value="30"' in body
    assert 'value="custom"' in body
    for value in ("never", "60", "90", "365"):
        assert f'<option value="{value}"' not in body


def test_organization_form_offers_never(client_for, org):
    """Organization keys may never expire unless the policy says otherwise."""
    body = client_for(org.admin).get(create_url("org")).content.decode()
    for value in ("never", "30", "60", "90", "365", "custom"):
        assert f'<option value="{value}"' in body


def test_form_greys_out_what_the_role_lacks(client_for, org):
    """A member sees secrets:write offered but disabled, and secrets:read ticked by the
    pre-selected "Same as my role"."""
    body = client_for(org.member).get(create_url("user")).content.decode()

    assert 'value="secrets:write" data-group="secrets" disabled' in body
    assert 'value="secrets:read" data-group="secrets" checked>' in body


def test_project_form_offers_only_project_permissions(client_for, org, tree):
    """A project key's form has no organization-wide permission to tick."""
    body = client_for(org.admin).get(create_url("project", tree.project.pk)).content.decode()

    assert 'value="secrets:read"' in body
    for pid in ("organization:read", "members:read", "api-keys:manage", "projects:create"):
        assert f'value="{pid}"' not in body


# --- what a valid form makes ----------------------------------------------------------------


def test_blank_name_is_generated(client_for, org):
    """Left blank, the name is generated."""
    client_for(org.member).post(create_url("user"), create_data(name=""))
    assert ApiKey.objects.get().name.startswith("key-")


def test_read_only_preset(client_for, org):
    """The Read-only preset gives exactly the read-only permissions."""
    client_for(org.member).post(create_url("user"), create_data(preset="read-only", permissions=[]))
    assert ApiKey.objects.get().permissions == ordered(READ_ONLY)


def test_allow_all_preset_stops_at_the_role(client_for, org):
    """Allow all gives everything the person holds, nothing more."""
    client_for(org.admin).post(create_url("org"), create_data(preset="all", permissions=[]))

    permissions = set(ApiKey.objects.get().permissions)
    assert permissions == ROLE_PERMISSIONS["admin"]
    assert permissions < ALL


def test_this_project_preset_on_a_project_key(client_for, org, tree):
    """The "This project" preset gives a project key every permission scoped to a project."""
    response = client_for(org.owner).post(
        create_url("project", tree.project.pk), create_data(preset="project", permissions=[])
    )

    assert response.status_code == 201
    assert set(ApiKey.objects.get().permissions) == {
        pid for pid, p in PERMISSIONS.items() if "project" in p.scope_levels
    }


def test_scope_from_the_form(client_for, org, tree):
    """A group's scope narrows its permissions; the rest stay organization-wide."""
    client_for(org.admin).post(
        create_url("org"),
        create_data(
            permissions=["secrets:read", "secrets:write", "projects:read"],
            scope_secrets=f"environment:{tree.environment.pk}",
        ),
    )

    ref = [{"type": "environment", "id": tree.environment.pk}]
    assert ApiKey.objects.get().scopes == {"secrets:read": ref, "secrets:write": ref}


def test_custom_date_expires_at_the_end_of_that_day(client_for, org):
    """A custom date means the key works until the end of that day, UTC."""
    day = date.today() + timedelta(days=10)

    client_for(org.member).post(
        create_url("user"), create_data(expiration="custom", expires_on=day.isoformat())
    )

    assert ApiKey.objects.get().expires_at == datetime.combine(day, time.max, tzinfo=UTC)


def test_thirty_days(client_for, org):
    """The 30-day choice expires the key 30 days from now."""
    client_for(org.member).post(create_url("user"), create_data(expiration="30"))

    lifetime = ApiKey.objects.get().expires_at - ApiKey.objects.get().created_at
    assert timedelta(days=30) - timedelta(seconds=5) < lifetime <= timedelta(days=30)


def test_never_for_an_organization_key(client_for, org):
    """An organization key may be made to never expire."""
    client_for(org.owner).post(create_url("org"), create_data(expiration="never"))
    assert ApiKey.objects.get().expires_at is None


# --- bad input ------------------------------------------------------------------------------

TYPED_NAME = "my typed name"

BAD_INPUT = [
    # (id, kind, form changes, message)
    ("name-too-long", "user", {"name": "n" * 101}, "Name must be at most 100 characters."),
    (
        "past-custom-date",
        "user",
        {"expiration": "custom", "expires_on": "2000-01-01"},
        "The expiration date must be in the future.",
    ),
    (
        "unparseable-date",
        "user",
        {"expiration": "custom", "expires_on": "31/01/2027"},
        "Enter a date like 2027-01-31.",
    ),
    (
        "garbage-date",
        "org",
        {"expiration": "custom", "expires_on": "soon"},
        "Enter a date like 2027-01-31.",
    ),
    (
        "custom-without-date",
        "org",
        {"expiration": "custom", "expires_on": ""},
        "Enter the date the key expires.",
    ),
    (
        "never-for-personal",
        "user",
        {"expiration": "never"},
        "Choose an expiration the policy allows.",
    ),
    ("year-for-personal", "user", {"expiration": "365"}, "Choose an expiration the policy allows."),
    ("unknown-expiration", "org", {"expiration": "42"}, "Choose an expiration the policy allows."),
    (
        "custom-beyond-policy",
        "user",
        {"expiration": "custom", "expires_on": (date.today() + timedelta(days=60)).isoformat()},
        "This organization's policy allows these keys at most 30 days.",
    ),
    (
        "unknown-permission",
        "org",
        {"permissions": ["nonsense:read"]},
        "Unknown permission: nonsense:read.",
    ),
    ("no-permission", "org", {"permissions": []}, "Choose at least one permission."),
    (
        "beyond-the-role",
        "user",
        {"permissions": ["secrets:read", "secrets:write"]},
        "You cannot give a key what you do not hold: secrets:write on the whole organization.",
    ),
    ("unknown-preset", "org", {"preset": "everything"}, "Choose one of the permission choices"),
    (
        "scope-of-nothing",
        "org",
        {"permissions": ["secrets:read"], "scope_secrets": "project:abc"},
        "Choose a scope from the list.",
    ),
    (
        "scope-too-deep",
        "org",
        {"permissions": ["projects:read"], "scope_projects": "environment:1"},
        "Choose a scope from the list.",
    ),
]


@pytest.mark.parametrize(
    ("kind", "changes", "message"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_INPUT],
)
def test_bad_input_is_refused_and_kept(client_for, org, htmx_headers, kind, changes, message):
    """Each bad input gets 422 with a clear message in the dialog, keeps the name, saves nothing."""
    actor = org.member if kind == "user" else org.admin
    data = create_data(name=TYPED_NAME)
    data.update(changes)
    before = key_counts()

    response = client_for(actor).post(create_url(kind), data, headers=htmx_headers)

    assert response.status_code == 422
    assert is_fragment(response)
    text = page_text(response)
    assert message in text
    assert f'value="{data["name"]}"' in text
    assert key_counts() == before


def test_duplicate_name_is_refused_and_kept(client_for, org, htmx_headers):
    """A name a live key of the member already has is refused, in any letter case."""
    new_key(org, name="Deploy Script")
    before = key_counts()

    response = client_for(org.member).post(
        create_url("user"), create_data(name="deploy script"), headers=htmx_headers
    )

    assert response.status_code == 422
    text = page_text(response)
    assert "A live key of this owner is already named “deploy script”." in text
    assert 'value="deploy script"' in text
    assert key_counts() == before


def test_scope_to_another_organizations_project_is_refused(client_for, org, tree, foreign_tree):
    """A scope value naming another organization's project is refused; nothing is saved."""
    before = key_counts()

    response = client_for(org.owner).post(
        create_url("org"),
        create_data(
            name=TYPED_NAME,
            permissions=["secrets:read"],
            scope_secrets=f"project:{foreign_tree.project.pk}",
        ),
    )

    assert response.status_code == 422
    text = page_text(response)
    assert "Choose a scope from the list." in text
    assert f'value="{TYPED_NAME}"' in text
    assert foreign_tree.project.name not in text
    assert key_counts() == before


def test_project_key_refuses_another_projects_scope(client_for, org, tree):
    """A project key's scope cannot name another project of the same organization."""
    from tests.apikeys.conftest import build_tree

    other = build_tree(org, name="Billing")
    before = key_counts()

    response = client_for(org.admin).post(
        create_url("project", tree.project.pk),
        create_data(permissions=["secrets:read"], scope_secrets=f"project:{other.project.pk}"),
    )

    assert response.status_code == 422
    assert "Choose a scope from the list." in page_text(response)
    assert key_counts() == before


def test_project_key_refuses_organization_wide_permissions(client_for, org, tree):
    """Ticking an organization-wide permission for a project key is refused with the reason."""
    before = key_counts()

    response = client_for(org.admin).post(
        create_url("project", tree.project.pk),
        create_data(name=TYPED_NAME, permissions=["secrets:read", "organization:read"]),
    )

    assert response.status_code == 422
    assert "A project key cannot hold organization-wide permissions: organization:read." in (
        page_text(response)
    )
    assert key_counts() == before


def test_admin_cannot_give_owner_only_permissions(client_for, org):
    """An admin posting members:delete (a disabled checkbox for them) is refused."""
    before = key_counts()

    response = client_for(org.admin).post(
        create_url("org"), create_data(permissions=["members:read", "members:delete"])
    )

    assert response.status_code == 422
    assert (
        "You cannot give a key what you do not hold: members:delete on the whole organization."
        in page_text(response)
    )
    assert key_counts() == before


@pytest.mark.parametrize("kind", ["project", "svc"])
def test_another_organizations_owner_is_404(client_for, org, other_org, kind):
    """A create URL naming another organization's project or service account is 404."""
    from tests.apikeys.conftest import build_tree
    from tests.factories import ServiceAccountFactory

    foreign = (
        build_tree(other_org).project
        if kind == "project"
        else ServiceAccountFactory(organization=other_org.organization)
    )
    before = key_counts()

    for method in ("get", "post"):
        response = getattr(client_for(org.owner), method)(
            create_url(kind, foreign.pk), create_data()
        )
        assert response.status_code == 404
    assert key_counts() == before


@pytest.mark.parametrize(
    "path",
    [
        "/o/acme/api-keys/new/project/999999/",
        "/o/acme/api-keys/new/svc/999999/",
        "/o/acme/api-keys/new/user/1/",
        "/o/acme/api-keys/new/org/1/",
        "/o/acme/api-keys/new/admin/",
        "/o/acme/api-keys/new/USER/",
        "/o/globex/api-keys/new/user/",
    ],
)
def test_tampered_create_urls_are_404(client_for, org, other_org, path):
    """Unknown owners, kinds and organizations in a create URL are 404, and nothing is made."""
    before = key_counts()

    response = client_for(org.owner).post(path, create_data())

    assert response.status_code == 404
    assert key_counts() == before


def test_deactivated_service_account_gets_no_new_key(client_for, org, bot):
    """A deactivated service account's create form answers with the reason; no key is made."""
    service_account_set_active(actor=Actor(user=org.owner), service_account=bot, active=False)
    before = key_counts()

    response = client_for(org.admin).post(create_url("svc", bot.pk), create_data(name=TYPED_NAME))

    assert response.status_code == 422
    text = page_text(response)
    assert "This service account is deactivated; reactivate it to create keys." in text
    assert f'value="{TYPED_NAME}"' in text
    assert key_counts() == before


def test_reactivated_service_account_gets_keys_again(client_for, org, bot):
    """Once reactivated, the service account can be given a key."""
    service_account_set_active(actor=Actor(user=org.owner), service_account=bot, active=False)
    service_account_set_active(actor=Actor(user=org.owner), service_account=bot, active=True)

    response = client_for(org.admin).post(create_url("svc", bot.pk), create_data())

    assert response.status_code == 201


# --- what every view must do ----------------------------------------------------------------


def test_anonymous_is_sent_to_login(client_for, org):
    """An anonymous visitor is sent to log in, and nothing is made."""
    url = create_url("user")
    response = client_for(None).post(url, create_data())

    assert response.status_code == 302
    assert response.url == f"/login/?next={url}"
    assert not ApiKey.objects.exists()


def test_post_without_csrf_token_is_refused(client_for, org):
    """A POST without the CSRF token is refused and makes no key."""
    client = client_for(org.member, enforce_csrf_checks=True)

    response = client.post(create_url("user"), create_data())

    assert response.status_code == 403
    assert not ApiKey.objects.exists()


def test_other_methods_are_refused(client_for, org):
    """Only GET and POST are served."""
    response = client_for(org.member).put(create_url("user"))
    assert response.status_code == 405


def test_member_keys_cannot_be_made_for_someone_else(client_for, org, htmx_headers):
    """Posting to the personal create URL always makes a key of the poster, whatever is sent."""
    client_for(org.member).post(
        create_url("user"),
        create_data(owner=str(org.owner.pk), owner_user=str(org.owner.pk), kind="org"),
        headers=htmx_headers,
    )

    api_key = ApiKey.objects.get()
    assert (api_key.kind, api_key.owner_user) == (KeyKind.USER, org.member)


def test_refused_form_keeps_everything_typed(client_for, org, tree, htmx_headers):
    """After a refusal the dialog still holds the name, permissions, scope and expiration."""
    new_key(org, KeyKind.ORGANIZATION, name="taken")
    day = (date.today() + timedelta(days=40)).isoformat()

    response = client_for(org.admin).post(
        create_url("org"),
        create_data(
            name="taken",
            permissions=["secrets:read", "projects:read"],
            scope_secrets=f"target:{tree.target.pk}",
            expiration="custom",
            expires_on=day,
        ),
        headers=htmx_headers,
    )

    assert response.status_code == 422
    body = response.content.decode()
    assert 'value="taken"' in body
    assert 'value="secrets:read" data-group="secrets" checked' in body
    assert 'value="projects:read" data-group="projects" checked' in body
    assert 'value="secrets:write" data-group="secrets">' in body
    assert f'<option value="target:{tree.target.pk}" selected>' in body
    assert '<option value="custom" selected>' in body
    assert f'value="{day}"' in body


@pytest.fixture
def noon(monkeypatch) -> datetime:
    """Freeze the clock the forms and policy read at noon UTC today."""
    fixed = datetime.combine(datetime.now(UTC).date(), time(12), tzinfo=UTC)
    monkeypatch.setattr("django.utils.timezone.now", lambda: fixed)
    return fixed


def test_custom_date_within_the_policy_is_accepted(client_for, org, noon):
    """Under the 30-day rule for personal keys, a custom date 29 days ahead is accepted."""
    day = (noon + timedelta(days=29)).date().isoformat()

    response = client_for(org.member).post(
        create_url("user"), create_data(expiration="custom", expires_on=day)
    )

    assert response.status_code == 201


def test_custom_date_on_the_last_day_the_policy_allows(client_for, org, noon):
    """The date exactly 30 days ahead is the last one a 30-day policy allows, and is accepted."""
    day = (noon + timedelta(days=30)).date().isoformat()

    response = client_for(org.member).post(
        create_url("user"), create_data(expiration="custom", expires_on=day)
    )

    assert response.status_code == 201
