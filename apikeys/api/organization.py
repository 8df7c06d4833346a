"""The key's organization and its members."""

from __future__ import annotations

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Query, Status

from accounts.models import Membership
from accounts.services import membership_change_role, membership_remove, organization_rename
from apikeys.api.auth import api_actor
from apikeys.api.routing import Router, paginate
from apikeys.api.schemas import (
    MemberOut,
    MemberUpdate,
    OrganizationOut,
    OrganizationUpdate,
    Page,
    PageParams,
)

router = Router(tags=["organization"])


def _member_out(membership: Membership) -> dict:
    user = membership.user
    return {
        "user_id": user.pk,
        "email": user.email,
        "display_name": user.display_name,
        "role": membership.role,
        "joined_at": membership.created_at,
    }


def _members(request: HttpRequest):
    return Membership.objects.filter(
        organization_id=request.auth.api_key.organization_id
    ).select_related("user", "organization")


@router.get(
    "/organization",
    permission="organization:read",
    response={200: OrganizationOut},
    summary="Read the organization",
)
def get_organization(request: HttpRequest):
    return request.auth.api_key.organization


@router.patch(
    "/organization",
    permission="organization:update",
    response={200: OrganizationOut},
    summary="Rename the organization",
)
def update_organization(request: HttpRequest, payload: OrganizationUpdate):
    return organization_rename(
        actor=api_actor(request), organization=request.auth.api_key.organization, name=payload.name
    )


@router.get(
    "/members",
    permission="members:read",
    response={200: Page[MemberOut]},
    tags=["members"],
    summary="List members, by email",
)
def list_members(request: HttpRequest, page: Query[PageParams]):
    return paginate(_members(request).order_by("user__email"), page, _member_out)


@router.patch(
    "/members/{id:user_id}",
    permission="members:update",
    response={200: MemberOut},
    tags=["members"],
    summary="Change a member's role",
)
def update_member(request: HttpRequest, user_id: int, payload: MemberUpdate):
    membership = get_object_or_404(_members(request), user_id=user_id)
    membership = membership_change_role(
        actor=api_actor(request), membership=membership, role=payload.role
    )
    return _member_out(membership)


@router.delete(
    "/members/{id:user_id}",
    permission="members:delete",
    response={204: None},
    tags=["members"],
    summary="Remove a member (their personal keys are revoked)",
)
def remove_member(request: HttpRequest, user_id: int):
    membership = get_object_or_404(_members(request), user_id=user_id)
    membership_remove(actor=api_actor(request), membership=membership)
    return Status(204, None)
