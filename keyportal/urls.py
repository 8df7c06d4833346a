"""URL routes. Everything inside an organization lives under /o/<slug>/."""

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path, re_path, register_converter
from django.views.decorators.csrf import csrf_exempt

from accounts import views as accounts
from accounts import views_audit as audit
from accounts import views_members as members
from accounts import views_service_accounts as service_accounts
from accounts.forms import LoginForm
from apikeys import views as apikeys
from apikeys import views_bulk as key_bulk
from apikeys import views_create as key_create
from apikeys import views_detail as key_detail
from apikeys import views_device as key_device
from apikeys import views_explore as key_explore
from apikeys import views_leaks as key_leaks
from apikeys import views_policy as key_policy
from apikeys.api import api, not_found
from keyportal.metrics import metrics_view
from projects import views as projects
from projects import views_edit as edit
from projects import views_secrets as secrets
from projects import views_sharing as sharing


class HierarchyKind:
    """The kinds rename and delete serve; anything else is not a route at all."""

    regex = "teams|projects|targets|environments|apps"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(HierarchyKind, "kind")

organization_patterns = [
    path("", projects.project_list, name="project_list"),
    path("projects/<int:pk>/", projects.project_detail, name="project_detail"),
    path("targets/<int:pk>/environments/", projects.environment_create, name="environment_create"),
    path("teams/", projects.team_list, name="team_list"),
    path("apps/", projects.app_list, name="app_list"),
    path("apps/<int:pk>/", projects.app_detail, name="app_detail"),
    path("environments/<int:pk>/secrets/", secrets.secret_list, name="secret_list"),
    path(
        "environments/<int:pk>/secrets/<str:name>/",
        secrets.secret_versions,
        name="secret_versions",
    ),
    path(
        "environments/<int:pk>/secrets/<str:name>/delete/",
        secrets.secret_purge,
        name="secret_purge",
    ),
    path(
        "environments/<int:pk>/secrets/<str:name>/versions/<int:version>/restore/",
        secrets.secret_restore,
        name="secret_restore",
    ),
    path("apps/<int:pk>/sharing/", sharing.app_sharing, name="app_sharing"),
    path("<kind:kind>/<int:pk>/rename/", edit.rename, name="rename"),
    path("<kind:kind>/<int:pk>/delete/", edit.delete, name="delete"),
    path("members/", members.member_list_view, name="member_list"),
    path("members/<int:pk>/role/", members.member_role, name="member_role"),
    path("members/<int:pk>/remove/", members.member_remove, name="member_remove"),
    path("invitations/<int:pk>/revoke/", members.invitation_revoke_view, name="invitation_revoke"),
    path(
        "service-accounts/", service_accounts.service_account_list_view, name="service_account_list"
    ),
    path(
        "service-accounts/<int:pk>/",
        service_accounts.service_account_detail,
        name="service_account_detail",
    ),
    path(
        "service-accounts/<int:pk>/active/",
        service_accounts.service_account_toggle,
        name="service_account_toggle",
    ),
    path(
        "service-accounts/<int:pk>/revoke-keys/",
        service_accounts.service_account_revoke_keys_view,
        name="service_account_revoke_keys",
    ),
    path(
        "service-accounts/<int:pk>/delete/",
        service_accounts.service_account_delete_view,
        name="service_account_delete",
    ),
    path("audit/", audit.audit_log, name="audit_log"),
    path("audit/export.csv", audit.audit_log_csv, name="audit_log_csv"),
    path("api-keys/", apikeys.organization_keys, name="organization_keys"),
    path("api-keys/policy/", key_policy.key_policy, name="key_policy"),
    path("api-keys/revoke/", key_bulk.api_key_bulk_revoke_view, name="api_key_bulk_revoke"),
    path("api-keys/owners/", key_bulk.api_key_owner_suggestions, name="api_key_owner_suggestions"),
    path("api-keys/new/<str:kind>/", key_create.api_key_create_view, name="api_key_create"),
    path(
        "api-keys/new/<str:kind>/<int:owner>/",
        key_create.api_key_create_view,
        name="api_key_create_for",
    ),
    path("api-keys/<int:pk>/", key_detail.api_key_detail, name="api_key_detail"),
    path("api-keys/<int:pk>/rotate/", key_create.api_key_rotate_view, name="api_key_rotate"),
    path("api-keys/<int:pk>/explore/", key_explore.api_key_explore, name="api_key_explore"),
    path("api-keys/<int:pk>/delete/", key_detail.api_key_delete, name="api_key_delete"),
    path("api-keys/<int:pk>/status/", key_detail.api_key_status, name="api_key_status"),
    path("settings/api-keys/", apikeys.personal_keys, name="personal_keys"),
]


def keyed(urls: tuple) -> tuple:
    """Exempt the API's views from the console's login: an API key is their authentication.

    Any other path under the API answers the API's JSON 404 (an id that is not one included).
    """
    patterns, app_name, namespace = urls
    # [\s\S], not ".": a path holding a newline (%0A) is under the API too.
    patterns = [*patterns, re_path(r"^(?P<path>[\s\S]*)$", csrf_exempt(not_found))]
    for pattern in patterns:
        login_not_required(pattern.callback)
    return patterns, app_name, namespace


urlpatterns = [
    path("api/v1/", keyed(api.urls)),
    # Prometheus metrics: 404 unless KEYPORTAL_METRICS_TOKEN or _ALLOWED_IPS is set.
    path("metrics", metrics_view, name="metrics"),
    path("", accounts.home, name="home"),
    path("signup/", accounts.signup, name="signup"),
    path("signup/confirm/", accounts.signup_confirm, name="signup_confirm"),
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="accounts/login.html",
            authentication_form=LoginForm,
            redirect_authenticated_user=True,
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("organizations/new/", accounts.organization_new, name="organization_new"),
    path("invitations/<str:token>/", accounts.invitation_detail, name="invitation"),
    path("device/", key_device.device, name="device"),
    path("report-leak/", key_leaks.report_leak, name="report_leak"),
    path("o/<slug:org>/", include(organization_patterns)),
]
