"""Template context for the console shell: the viewer's organizations and role."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from accounts.access import has_role
from accounts.models import Role
from accounts.selectors import membership_list_for_user


def console(request: HttpRequest) -> dict:
    """Return the current membership and, lazily, every organization the viewer belongs to."""
    membership = getattr(request, "membership", None)
    if membership is None:
        return {}
    return {
        "membership": membership,
        "organization": membership.organization,
        "is_admin": has_role(membership, Role.ADMIN),
        "is_owner": has_role(membership, Role.OWNER),
        # Read once, when the switcher first needs it, however many times the page uses it.
        "memberships": SimpleLazyObject(lambda: list(membership_list_for_user(user=request.user))),
    }
