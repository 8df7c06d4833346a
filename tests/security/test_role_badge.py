"""The role badge beside the organization's name is the viewer's own role on every page.

A page that put another person's membership in its context under the name "membership" (the
member-removal page did) made the badge show that person's role instead: an owner read "Member".
"""

from __future__ import annotations

import re

import pytest

from accounts.models import Role
from tests.factories import MembershipFactory
from tests.security.conftest import logged_in
from tests.security.test_url_table import ORGANIZATION_URLS

pytestmark = pytest.mark.django_db

VIEWERS = ("member", "admin", "owner")
BADGE = re.compile(r'<span class="role-badge">(.*?)</span>')
# Answers that are not console pages: a CSV file, and the owner suggestions' fragment.
NOT_PAGES = {"audit_log_csv", "api_key_owner_suggestions"}


def badge_cases() -> list:
    """Return every organization page that answers 200 for a role, as (path, role)."""
    return [
        pytest.param(path, role, id=f"{path or 'home'}-{role}")
        for name, path, *statuses in ORGANIZATION_URLS
        for role, status in zip(VIEWERS, statuses[2:], strict=True)
        if status == 200 and name not in NOT_PAGES
    ]


@pytest.mark.parametrize(("path", "role"), badge_cases())
def test_every_page_shows_the_viewers_own_role(objects, path, role):
    """Every console page of the organization shows the viewer's role in the navigation."""
    viewer = getattr(objects.org, role)
    response = logged_in(viewer).get(objects.fill(f"/o/acme/{path}"))

    assert response.status_code == 200
    badges = BADGE.findall(response.content.decode())  # the sidebar's and the small screen's
    assert badges and set(badges) == {Role(role).label}


@pytest.mark.parametrize("removed_role", [Role.MEMBER, Role.ADMIN, Role.OWNER])
def test_member_removal_page_names_both_roles_right(objects, removed_role):
    """An owner removing someone reads "Owner" in the navigation and the other's own role."""
    person = MembershipFactory(organization=objects.org.organization, role=removed_role)

    response = logged_in(objects.org.owner).get(f"/o/acme/members/{person.pk}/remove/")

    html = response.content.decode()
    badges = BADGE.findall(html)
    assert badges and set(badges) == {"Owner"}
    assert f"({Role(removed_role).label.lower()}) will lose access" in html
