"""Every URL of the console, for every role, with the status a GET must answer.

Modelled on Zulip's URL test and Sentry's PermissionTestCase: a new route fails
`test_every_url_pattern_is_in_the_table` until it gets a row here.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, resolve

from tests.security.conftest import logged_in

API_PREFIX = "api/v1/"
ROLES = ("anonymous", "outsider", "member", "admin", "owner")

# Paths name objects of the `org` fixture's organization ("acme") by placeholder:
# {team}, {project}, {target}, {environment}, {app}, {account} (a service account),
# {invitation} (pending) and {membership} (the plain member's) are replaced by primary keys.
# 302 for anonymous on a console page means: sent to /login/?next=<path>.
# fmt: off
SITE_URLS = [
    # name               path                           anon out  mem  adm  own
    ("home",             "/",                           302, 302, 302, 302, 302),
    ("signup",           "/signup/",                    200, 302, 302, 302, 302),
    ("signup_confirm",   "/signup/confirm/",            410, 302, 302, 302, 302),
    ("login",            "/login/",                     200, 302, 302, 302, 302),
    ("logout",           "/logout/",                    302, 405, 405, 405, 405),
    ("organization_new", "/organizations/new/",         302, 200, 200, 200, 200),
    ("invitation",       "/invitations/unknown-token/", 410, 410, 410, 410, 410),
    ("device",           "/device/",                    302, 200, 200, 200, 200),
    ("report_leak",      "/report-leak/",               200, 200, 200, 200, 200),
    # Off unless KEYPORTAL_METRICS_TOKEN or _ALLOWED_IPS is set (tests/apikeys/test_metrics.py).
    ("metrics",          "/metrics",                    404, 404, 404, 404, 404),
]

# Paths under /o/acme/, the `org` fixture's organization.
ORGANIZATION_URLS = [
    # name                     path                                  anon out  mem  adm  own
    ("project_list",           "",                                   302, 404, 200, 200, 200),
    ("project_detail",         "projects/{project}/",                302, 404, 200, 200, 200),
    ("environment_create",     "targets/{target}/environments/",     302, 404, 403, 405, 405),
    ("team_list",              "teams/",                             302, 404, 200, 200, 200),
    ("app_list",               "apps/",                              302, 404, 200, 200, 200),
    ("app_detail",             "apps/{app}/",                        302, 404, 200, 200, 200),
    # {environment} holds the secret DATABASE_URL, at version 1.
    ("secret_list",            "environments/{environment}/secrets/",                                    302, 404, 200, 200, 200),
    ("secret_versions",        "environments/{environment}/secrets/DATABASE_URL/",                       302, 404, 200, 200, 200),
    ("secret_versions",        "environments/{environment}/secrets/NO_SUCH_SECRET/",                     302, 404, 404, 404, 404),
    ("secret_purge",           "environments/{environment}/secrets/DATABASE_URL/delete/",                302, 404, 403, 200, 200),
    ("secret_restore",         "environments/{environment}/secrets/DATABASE_URL/versions/1/restore/",    302, 404, 403, 200, 200),
    ("secret_restore",         "environments/{environment}/secrets/DATABASE_URL/versions/9/restore/",    302, 404, 403, 404, 404),
    ("app_sharing",            "apps/{app}/sharing/",                302, 404, 404, 200, 200),
    ("rename",                 "teams/{team}/rename/",               302, 404, 403, 200, 200),
    ("rename",                 "projects/{project}/rename/",         302, 404, 403, 200, 200),
    ("rename",                 "targets/{target}/rename/",           302, 404, 403, 200, 200),
    ("rename",                 "environments/{environment}/rename/", 302, 404, 403, 200, 200),
    ("rename",                 "apps/{app}/rename/",                 302, 404, 403, 200, 200),
    ("delete",                 "teams/{team}/delete/",               302, 404, 403, 200, 200),
    ("delete",                 "projects/{project}/delete/",         302, 404, 403, 200, 200),
    ("delete",                 "targets/{target}/delete/",           302, 404, 403, 200, 200),
    ("delete",                 "environments/{environment}/delete/", 302, 404, 403, 200, 200),
    ("delete",                 "apps/{app}/delete/",                 302, 404, 403, 200, 200),
    ("member_list",            "members/",                           302, 404, 200, 200, 200),
    ("member_role",            "members/{membership}/role/",         302, 404, 403, 403, 405),
    ("member_remove",          "members/{membership}/remove/",       302, 404, 403, 403, 200),
    ("invitation_revoke",      "invitations/{invitation}/revoke/",   302, 404, 403, 403, 405),
    ("service_account_list",   "service-accounts/",                  302, 404, 404, 200, 200),
    ("service_account_detail", "service-accounts/{account}/",        302, 404, 404, 200, 200),
    ("service_account_toggle", "service-accounts/{account}/active/", 302, 404, 404, 200, 200),
    ("service_account_revoke_keys", "service-accounts/{account}/revoke-keys/", 302, 404, 404, 200, 200),
    ("service_account_delete", "service-accounts/{account}/delete/", 302, 404, 404, 200, 200),
    ("audit_log",              "audit/",                             302, 404, 404, 200, 200),
    ("audit_log_csv",          "audit/export.csv",                   302, 404, 404, 200, 200),
    ("organization_keys",      "api-keys/",                          302, 404, 404, 200, 200),
    ("personal_keys",          "settings/api-keys/",                 302, 404, 200, 200, 200),
    ("key_policy",             "api-keys/policy/",                   302, 404, 404, 404, 200),
    ("api_key_bulk_revoke",    "api-keys/revoke/",                   302, 404, 405, 405, 405),
    ("api_key_owner_suggestions", "api-keys/owners/",                302, 404, 404, 404, 200),
    ("api_key_create",         "api-keys/new/user/",                 302, 404, 200, 200, 200),
    ("api_key_create",         "api-keys/new/org/",                  302, 404, 404, 200, 200),
    ("api_key_create",         "api-keys/new/nonsense/",             302, 404, 404, 404, 404),
    ("api_key_create_for",     "api-keys/new/project/{project}/",    302, 404, 404, 200, 200),
    ("api_key_create_for",     "api-keys/new/svc/{account}/",        302, 404, 404, 200, 200),
    ("api_key_create_for",     "api-keys/new/user/{project}/",       302, 404, 404, 404, 404),
    # {member_key} is the plain member's personal key; {org_key} an organization key.
    ("api_key_detail",         "api-keys/{member_key}/",             302, 404, 200, 200, 200),
    ("api_key_detail",         "api-keys/{org_key}/",                302, 404, 404, 200, 200),
    ("api_key_explore",        "api-keys/{member_key}/explore/",     302, 404, 200, 200, 200),
    ("api_key_explore",        "api-keys/{org_key}/explore/",        302, 404, 404, 200, 200),
    ("api_key_rotate",         "api-keys/{member_key}/rotate/",      302, 404, 200, 403, 403),
    ("api_key_rotate",         "api-keys/{org_key}/rotate/",         302, 404, 404, 200, 200),
    ("api_key_delete",         "api-keys/{member_key}/delete/",      302, 404, 200, 403, 200),
    ("api_key_delete",         "api-keys/{org_key}/delete/",         302, 404, 404, 200, 200),
    ("api_key_status",         "api-keys/{member_key}/status/",      302, 404, 405, 405, 405),
    ("api_key_status",         "api-keys/{org_key}/status/",         302, 404, 405, 405, 405),
]
# fmt: on

URL_TABLE = SITE_URLS + [
    (name, f"/o/acme/{path}", *statuses) for name, path, *statuses in ORGANIZATION_URLS
]

# Pages anyone may open; every other page sends an anonymous visitor to log in.
PUBLIC = {"signup", "signup_confirm", "login", "invitation", "report_leak", "metrics"}


def url_patterns(patterns=None, prefix: str = ""):
    """Yield (route, name) for every URL pattern, following include() all the way down."""
    if patterns is None:
        patterns = get_resolver().url_patterns
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            if str(pattern.pattern) == API_PREFIX:
                continue  # key-authenticated: tests/apikeys/test_api_routes.py tables those
            yield from url_patterns(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            assert isinstance(pattern, URLPattern)
            yield prefix + str(pattern.pattern), pattern.name


def table_cases() -> list:
    """Return one test case per row and role."""
    return [
        pytest.param(name, path, role, status, id=f"{path}-{role}")
        for name, path, *statuses in URL_TABLE
        for role, status in zip(ROLES, statuses, strict=True)
    ]


def test_every_url_pattern_is_in_the_table():
    """Every URL pattern, included ones too, has a row in the table, and no row is stale."""
    routes = dict(url_patterns())
    unnamed = [route for route, name in routes.items() if name is None]
    assert unnamed == [], "Name these URL patterns so the table can list them."
    in_table = {name for name, *_ in URL_TABLE}
    missing = {route: name for route, name in routes.items() if name not in in_table}
    assert missing == {}, "Add these URL patterns to URL_TABLE, with a status for every role."
    stale = in_table - set(routes.values())
    assert stale == set(), "These URL_TABLE rows name no URL pattern."


def test_the_walk_reaches_the_organization_patterns():
    """The resolver walk sees the routes included under /o/<slug>/."""
    routes = dict(url_patterns())
    assert routes["o/<slug:org>/audit/"] == "audit_log"
    assert routes["o/<slug:org>/"] == "project_list"


@pytest.mark.parametrize(("name", "path", "role", "status"), table_cases())
def test_url_table(name, path, role, status, objects, outsider):
    """Each URL answers a GET with the status its row gives for the role."""
    path = objects.fill(path)
    assert resolve(path).url_name == name, "The row's path does not resolve to its name."
    people = {
        "anonymous": None,
        "outsider": outsider,
        "member": objects.org.member,
        "admin": objects.org.admin,
        "owner": objects.org.owner,
    }
    client = logged_in(people[role])

    response = client.get(path)

    assert response.status_code == status
    if role == "anonymous" and name not in PUBLIC:
        assert response["Location"] == f"/login/?next={quote(path)}"
