"""Where keys live in the console: personal, organization, project and service-account lists."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet
from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone

from accounts.access import Refused, actor_from_request, has_role
from accounts.models import Role
from accounts.selectors import service_account_list
from apikeys import authority
from apikeys.authority import Act
from apikeys.filters import KeyFilterForm, apply_filters, with_status
from apikeys.freshness import expiry_urgency, unused_flag
from apikeys.models import ApiKey, KeyKind
from apikeys.policy import exceeds_policy, policies_for
from apikeys.selectors import api_key_list, key_owner_exists
from keyportal.pagination import paginate
from projects.models import Project
from projects.selectors import project_list


def key_count(count: int) -> str:
    """Return `1 key` or `3 keys`, as messages and confirmations say it."""
    return "1 key" if count == 1 else f"{count} keys"


@dataclass(frozen=True)
class Place:
    """One owner's keys: what kind they are, whose, and the page that lists them."""

    kind: str
    owner: object
    page_url: str
    create_url: str
    empty_message: str
    project: Project | None = None
    # The organization's keys table: every key the viewer may see, whatever its kind.
    every_kind: bool = False
    # Search and filters above the table (the organization's and the personal keys tables).
    filtered: bool = False

    @property
    def whole_label(self) -> str:
        return "Whole project" if self.project else "Whole organization"


def key_place(request: HttpRequest, kind: str, owner_pk: int | None = None) -> Place:
    """Return the place for `kind` (and owner id), or 404/403 as the viewer's role says."""
    org = request.organization.slug
    if kind == KeyKind.USER and owner_pk is None:
        return Place(
            kind,
            request.user,
            reverse("personal_keys", kwargs={"org": org}),
            reverse("api_key_create", kwargs={"org": org, "kind": kind}),
            "You have no personal API key in this organization yet.",
            filtered=True,
        )
    if kind not in (KeyKind.ORGANIZATION, KeyKind.PROJECT, KeyKind.SERVICE_ACCOUNT):
        raise Http404("No such kind of key.")
    if not authority.manages_others(actor_from_request(request), request.organization):
        # Members may not see these keys at all (DESIGN.md: objects outside reach are 404).
        raise Refused("No such page.", act=Act.CREATE, hidden=True)
    if kind == KeyKind.ORGANIZATION:
        if owner_pk is not None:
            raise Http404("No such page.")
        return Place(
            kind,
            request.organization,
            reverse("organization_keys", kwargs={"org": org}),
            reverse("api_key_create", kwargs={"org": org, "kind": kind}),
            "No API key has been created in this organization yet.",
            every_kind=True,
            filtered=True,
        )
    create_url = reverse("api_key_create_for", kwargs={"org": org, "kind": kind, "owner": owner_pk})
    if kind == KeyKind.PROJECT:
        project = get_object_or_404(project_list(organization=request.organization), pk=owner_pk)
        return Place(
            kind,
            project,
            reverse("project_detail", kwargs={"org": org, "pk": project.pk}),
            create_url,
            "No API key has been created on this project.",
            project=project,
        )
    account = get_object_or_404(
        service_account_list(organization=request.organization), pk=owner_pk
    )
    return Place(
        kind,
        account,
        reverse("service_account_detail", kwargs={"org": org, "pk": account.pk}),
        create_url,
        "This service account has no API key yet.",
    )


def place_keys(request: HttpRequest, place: Place) -> QuerySet[ApiKey]:
    """Return the keys of a place as far as the viewer may see them, revoked ones included."""
    keys = api_key_list(actor=actor_from_request(request), organization=request.organization)
    if place.every_kind:
        return keys
    keys = keys.filter(kind=place.kind)
    match place.kind:
        case KeyKind.USER:
            return keys.filter(owner_user=place.owner)
        case KeyKind.PROJECT:
            return keys.filter(owner_project=place.owner)
        case KeyKind.SERVICE_ACCOUNT:
            return keys.filter(owner_service_account=place.owner)
    return keys


def key_table_context(request: HttpRequest, place: Place) -> dict:
    """Return what `apikeys/_key_table.html` needs: one page of keys, filtered as the query
    string says, flagged against policy (and for a near expiry, or no use) and marked with what
    the viewer may revoke."""
    keys, filters, notes = place_keys(request, place), None, []
    # A place without filters still lists its revoked keys on request: its empty state links
    # there when revoked keys are all it has.
    showing_revoked = not place.filtered and request.GET.get("status") == "revoked"
    if place.filtered:
        filters = KeyFilterForm(
            request.GET,
            with_owner=place.every_kind and has_role(request.membership, Role.OWNER),
            with_kind=place.every_kind,
        )
        if not filters.is_valid():
            keys = keys.none()
        else:
            keys = apply_filters(keys, filters.cleaned_data)
            owner = filters.cleaned_data.get("owner")
            if owner and not key_owner_exists(organization=request.organization, email=owner):
                notes.append(
                    f"No member or service account of {request.organization.name} "
                    f"has the email {owner}."
                )
    else:
        keys = with_status(keys, "revoked" if showing_revoked else "")
    page, page_note = paginate(keys, request.GET.get("page"))
    if page_note:
        notes.append(page_note)
    # An empty table says how many revoked keys it hides, rather than "no key yet".
    revoked_count = 0
    if not page.object_list and not showing_revoked:
        if filters is None:
            revoked_count = with_status(place_keys(request, place), "revoked").count()
        elif filters.is_valid() and not filters.cleaned_data.get("status"):
            revoked = {**filters.cleaned_data, "status": "revoked"}
            revoked_count = apply_filters(place_keys(request, place), revoked).count()
    policies = policies_for(organization=request.organization)
    actor = actor_from_request(request)
    now = timezone.now()
    for key in page.object_list:
        key.exceeds_policy = exceeds_policy(key, policies[key.kind])
        key.expiry_urgency = expiry_urgency(key, now)
        key.unused_flag = unused_flag(key, policies[key.kind], now)
        key.revocable = not key.is_revoked and authority.allowed(actor, Act.REVOKE, key)
    return {
        "keys": page.object_list,
        "page": page,
        "place": place,
        "filters": filters,
        "notes": notes,
        "selectable": any(key.revocable for key in page.object_list),
        "showing_revoked": showing_revoked,
        "revoked_count": revoked_count,
    }
