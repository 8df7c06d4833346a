"""Resolve the organization in a console URL through the viewer's membership."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse

from accounts.models import Membership, Origin, Role, User
from keyportal.http import client_ip

ROLE_RANK = {Role.MEMBER: 1, Role.ADMIN: 2, Role.OWNER: 3}
ROLE_NEEDED_MESSAGE = {
    Role.ADMIN: "Only owners and admins of this organization can do this.",
    Role.OWNER: "Only owners of this organization can do this.",
}


@dataclass(frozen=True)
class Actor:
    """Who is acting, and from where: recorded on every history row."""

    user: User | None
    ip: str = ""
    origin: str = Origin.WEB
    label: str = ""
    # Set when an API key acts: the key, and the most it may hand on to keys it creates.
    key_id: int | None = None
    ceiling: frozenset[str] | None = None

    @property
    def display(self) -> str:
        if self.label:
            return self.label
        return self.user.email if self.user else "system"


def actor_from_request(request: HttpRequest) -> Actor:
    """Return the signed-in person as the actor of a console request."""
    return Actor(user=request.user, ip=client_ip(request), origin=Origin.WEB)


def has_role(membership: Membership, role: str) -> bool:
    """Return True when the membership's role is at least `role`."""
    return ROLE_RANK[membership.role] >= ROLE_RANK[role]


def org_view(
    view: Callable | None = None, *, role: str = Role.MEMBER, hidden: bool = False
) -> Callable:
    """Give the view `request.membership` for the URL's organization, or answer 404.

    Outsiders always get 404. Members whose role is below `role` get 404 when the page
    shows what they may not see (`hidden`), and 403 when it is an action they may not take.
    """

    def decorate(func: Callable) -> Callable:
        @wraps(func)
        def wrapper(request: HttpRequest, org: str, *args, **kwargs) -> HttpResponse:
            membership = (
                Membership.objects.select_related("organization")
                .filter(user=request.user, organization__slug=org)
                .first()
            )
            if membership is None:
                raise Http404("No such organization.")
            if not has_role(membership, role):
                if hidden:
                    raise Http404("No such page.")
                raise PermissionDenied(ROLE_NEEDED_MESSAGE[role])
            # The membership's person is the signed-in one: no query to read it again.
            membership.user = request.user
            request.membership = membership
            request.organization = membership.organization
            if request.session.get("organization") != membership.organization.slug:
                # Remembered for "/"; written only on a switch so views do not save the session.
                request.session["organization"] = membership.organization.slug
            return func(request, *args, **kwargs)

        return wrapper

    return decorate(view) if view is not None else decorate
