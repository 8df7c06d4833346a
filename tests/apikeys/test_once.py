"""A form sent twice is answered as the first time: no second key, no second rotation, no false
failure (issue 11, item 3; keyportal/once.py)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse

from accounts.access import Actor
from accounts.models import AuditEvent
from apikeys.models import ApiKey, KeyKind
from apikeys.services import api_key_revoke
from keyportal import once
from tests.accounts.helpers import page_text
from tests.apikeys.conftest import (
    create_data,
    create_url,
    delete_url,
    new_key,
    revealed_token,
    rotate_url,
)

pytestmark = pytest.mark.django_db


def token_of(page) -> str:
    """Return the one-time token a rendered form carries."""
    return re.search(r'name="once" value="([^"]+)"', page.content.decode()).group(1)


def test_create_sent_twice_makes_one_key_and_says_so(client_for, org):
    """A reload of the reveal (the same POST again) makes no second key and shows no secret."""
    client = client_for(org.member)
    data = {**create_data(name="laptop"), "once": token_of(client.get(create_url("user")))}

    first = client.post(create_url("user"), data)
    again = client.post(create_url("user"), data)

    assert first.status_code == 201
    token = revealed_token(first)
    assert again.status_code == 200
    text = page_text(again)
    assert "This key was created by your first request." in text
    assert "laptop" in text
    assert token[12:] not in again.content.decode()
    assert ApiKey.objects.count() == 1


def test_create_sent_again_while_the_first_runs_makes_no_key(client_for, org, monkeypatch):
    """Two sendings at once: the second finds the token claimed by the first (still running)
    and makes nothing."""
    from django.test import RequestFactory

    monkeypatch.setattr(once, "WAIT_SECONDS", 0.2)
    client = client_for(org.member)
    data = {**create_data(name="laptop"), "once": "a-claimed-token-123"}
    running = RequestFactory().post(create_url("user"), data)
    running.user = org.member
    assert once.claim(running)

    response = client.post(create_url("user"), data)

    assert "This key was created by your first request." in page_text(response)
    assert not ApiKey.objects.exists()


def test_a_refused_create_gives_its_token_back(client_for, org):
    """A first sending with an error keeps its token, and the corrected one goes through."""
    client = client_for(org.member)
    data = {**create_data(name="laptop", permissions=["secrets:write"]), "once": "tok-refused-1"}

    refused = client.post(create_url("user"), data)
    assert refused.status_code == 422
    assert 'name="once" value="tok-refused-1"' in refused.content.decode()
    corrected = client.post(create_url("user"), {**data, "permissions": ["projects:read"]})

    assert corrected.status_code == 201
    assert ApiKey.objects.count() == 1


def test_rotate_sent_twice_rotates_once(client_for, org):
    """The same rotation sent again changes nothing and shows no new secret."""
    api_key, _ = new_key(org, name="laptop")
    client = client_for(org.member)
    data = {"grace": "now", "once": token_of(client.get(rotate_url(api_key)))}

    first = client.post(rotate_url(api_key), data)
    api_key.refresh_from_db()
    digest = api_key.digest
    again = client.post(rotate_url(api_key), data)

    assert first.status_code == 201
    assert "This key was rotated by your first request." in page_text(again)
    api_key.refresh_from_db()
    assert api_key.digest == digest
    assert AuditEvent.objects.filter(action="api_key.rotated").count() == 1


def test_revoke_confirmed_twice_is_answered_the_same(client_for, org):
    """The second confirmation lands where the first did, with the same message."""
    api_key, _ = new_key(org, name="laptop")
    client = client_for(org.member)
    data = {"once": token_of(client.get(delete_url(api_key)))}

    first = client.post(delete_url(api_key), data, follow=True)
    again = client.post(delete_url(api_key), data, follow=True)

    assert first.redirect_chain == again.redirect_chain
    for response in (first, again):
        assert "The API key “laptop” has been revoked." in page_text(response)
    assert AuditEvent.objects.filter(action="api_key.revoked").count() == 1


def test_bulk_revoke_confirmed_twice_is_answered_the_same(client_for, org):
    """Revoking three keys, confirmed twice (or twice at once), says "3 keys revoked" twice."""
    keys = [new_key(org, KeyKind.ORGANIZATION, name=f"ci {n}")[0] for n in range(3)]
    client = client_for(org.owner)
    url = reverse("api_key_bulk_revoke", kwargs={"org": "acme"})
    data = {"ids": [k.pk for k in keys], "confirm": "yes", "once": "bulk-token-1234"}

    first = client.post(url, data, follow=True)
    again = client.post(url, data, follow=True)
    other_token = client.post(url, {**data, "once": "bulk-token-5678"}, follow=True)

    for response in (first, again, other_token):
        assert "3 keys revoked." in page_text(response)
    assert AuditEvent.objects.filter(action="api_key.revoked").count() == 3


def test_forms_carry_a_token_and_keep_it_when_re_rendered(client_for, org):
    """Each rendering has a fresh token; a form re-rendered with its errors keeps the one sent."""
    client = client_for(org.member)
    assert token_of(client.get(create_url("user"))) != token_of(client.get(create_url("user")))


def test_a_revoked_key_revoked_again_without_a_token_is_no_failure(client_for, org):
    """A retried POST from an old form (no token) is answered as a success too."""
    api_key, _ = new_key(org, name="laptop")
    api_key_revoke(actor=Actor(user=org.member), api_key=api_key)

    response = client_for(org.member).post(delete_url(api_key), follow=True)

    assert "The API key “laptop” has been revoked." in page_text(response)


@pytest.mark.parametrize("form", ["service account delete", "member remove", "secret purge"])
def test_other_confirmations_sent_twice_are_answered_the_same(client_for, org, bot, form):
    """Deleting a service account, removing a member, purging a secret: the second sending of
    the same confirmation lands where the first did, with its message, not on a 404."""
    from accounts.models import Membership, ServiceAccount
    from projects.models import Secret
    from projects.secrets import secret_set
    from tests.factories import EnvironmentFactory

    client = client_for(org.owner)
    if form == "service account delete":
        url = reverse("service_account_delete", kwargs={"org": "acme", "pk": bot.pk})
    elif form == "member remove":
        url = reverse("member_remove", kwargs={"org": "acme", "pk": org.membership(org.member).pk})
    else:
        environment = EnvironmentFactory(target__project__team__organization=org.organization)
        secret_set(actor=Actor(user=org.owner), environment=environment, name="TOKEN", value="v")
        url = reverse("secret_purge", kwargs={"org": "acme", "pk": environment.pk, "name": "TOKEN"})
    data = {"once": token_of(client.get(url)), "confirm": "yes", "name": "TOKEN"}

    first = client.post(url, data, follow=True)
    again = client.post(url, data, follow=True)

    assert first.redirect_chain, page_text(first)
    assert again.redirect_chain == first.redirect_chain
    assert again.status_code == 200
    shown = [str(m) for m in first.context["messages"]]
    assert shown and shown == [str(m) for m in again.context["messages"]]
    done = {
        "service account delete": not ServiceAccount.objects.filter(pk=bot.pk).exists(),
        "member remove": not Membership.objects.filter(user=org.member).exists(),
        "secret purge": not Secret.objects.filter(name="TOKEN").exists(),
    }
    assert done[form]


def test_a_token_is_bound_to_its_form(client_for, org):
    """A token sent with another key's revoke form is no replay: that key is revoked, with its
    own message."""
    first, _ = new_key(org, name="first")
    second, _ = new_key(org, name="second")
    client = client_for(org.member)
    data = {"once": token_of(client.get(delete_url(first)))}
    client.post(delete_url(first), data)

    response = client.post(delete_url(second), data, follow=True)

    assert "The API key “second” has been revoked." in page_text(response)
    second.refresh_from_db()
    assert second.is_revoked


def test_a_create_that_failed_gives_its_token_back(client_for, org, monkeypatch):
    """A server error during the first sending leaves nothing claimed: the retry makes the key."""
    from apikeys import views_create

    client = client_for(org.member)
    data = {**create_data(name="laptop"), "once": "tok-crash-1234"}
    real = views_create.api_key_create
    monkeypatch.setattr(views_create, "api_key_create", lambda **kw: 1 / 0)
    client.raise_request_exception = False
    assert client.post(create_url("user"), data).status_code == 500
    monkeypatch.setattr(views_create, "api_key_create", real)

    retried = client.post(create_url("user"), data)

    assert retried.status_code == 201
    assert ApiKey.objects.count() == 1


def test_bulk_revoke_of_keys_revoked_by_someone_else_is_no_success(client_for, org):
    """An admin "revoking" a key the owner revoked earlier is told nothing was revoked."""
    member_key, _ = new_key(org, name="laptop")
    org_key, _ = new_key(org, KeyKind.ORGANIZATION, name="ci")
    earlier = api_key_revoke(actor=Actor(user=org.owner), api_key=org_key).revoked_at
    url = reverse("api_key_bulk_revoke", kwargs={"org": "acme"})
    ApiKey.objects.filter(pk=org_key.pk).update(revoked_at=earlier - timedelta(hours=1))

    response = client_for(org.admin).post(
        url, {"ids": [member_key.pk, org_key.pk], "confirm": "yes"}, follow=True
    )

    assert "No key was revoked" in page_text(response)
    assert "revoked." not in page_text(response).replace("No key was revoked", "")
