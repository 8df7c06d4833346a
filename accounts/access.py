"""Resolve the organization in a console URL through the viewer's membership."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import TYPE_CHECKING

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse

from accounts.models import Membership, Origin, Role, User
from keyportal.http import client_ip

if TYPE_CHECKING:
    from apikeys.models import ApiKey
    from apikeys.power import Power

ROLE_RANK = {Role.MEMBER: 1, Role.ADMIN: 2, Role.OWNER: 3}
ROLE_NEEDED_MESSAGE = {
    Role.ADMIN: "Only owners and admins of this organization can do this.",
    Role.OWNER: "Only owners of this organization can do this.",
}


@dataclass(frozen=True)
class Actor:
    """Who is acting, from where, and as what (DESIGN.md, "Authority over keys").

    A person acts through their membership; an API key as verified on this request (its power
    comes with it); an operator at the shell (manage.py) holds everything. Every history row
    records the actor; apikeys.authority decides what each may do to a key.
    """

    user: User | None
    ip: str = ""
    origin: str = Origin.WEB
    label: str = ""
    # The person's membership in the organization concerned, when the door already has it.
    membership: Membership | None = None
    # Set when an API key acts (through the API, the CLI or the Explorer): the key as verified
    # on this request and its power (apikeys.power.Power, cut to its owner's current role).
    key: ApiKey | None = None
    key_power: Power | None = None
    # The key was sent with its previous secret, still in its grace period after a rotation.
    key_previous_secret: bool = False
    is_operator: bool = False

    @classmethod
    def operator(cls, label: str, origin: str = Origin.CLI) -> Actor:
        """Return the operator acting from the shell: outside the organizations, holding all."""
        return cls(user=None, origin=origin, label=label, is_operator=True)

    @property
    def key_id(self) -> int | None:
        return self.key.pk if self.key is not None else None

    @property
    def display(self) -> str:
        if self.label:
            return self.label
        return self.user.email if self.user else "system"


class Refused(Exception):
    """A door's refusal of an act (apikeys.authority raises it). `hidden`: the object does not
    exist for the actor, so every door answers 404; otherwise 403, or a message in the form."""

    def __init__(
        self,
        message: str,
        *,
        act: str,
        api_key: ApiKey | None = None,
        hidden: bool = False,
        permission: str | None = None,
        detail: dict | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.act = act
        self.api_key = api_key
        self.hidden = hidden
        # Set when what is missing is a permission (or a grant of it): 403 insufficient_scope.
        self.permission = permission
        self.detail = detail or {}

    @property
    def code(self) -> str:
        if self.hidden:
            return "not_found"
        return "insufficient_scope" if self.permission else "forbidden"


def actor_from_request(request: HttpRequest) -> Actor:
    """Return the signed-in person as the actor of a console request."""
    return Actor(
        user=request.user,
        ip=client_ip(request),
        origin=Origin.WEB,
        membership=getattr(request, "membership", None),
    )


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
            try:
                return func(request, *args, **kwargs)
            except Refused as refused:
                if refused.hidden:
                    raise Http404(refused.message) from None
                raise PermissionDenied(refused.message) from None

        return wrapper

    return decorate(view) if view is not None else decorate
