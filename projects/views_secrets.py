"""Console pages for an environment's secrets: names, versions and history, never values.

Reading a value is what an API key with secrets:decrypt is for; the console only writes values
(owners and admins) and never renders one back, not even into a form after an error.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods

from accounts.access import ROLE_NEEDED_MESSAGE, actor_from_request, has_role, org_view
from accounts.models import Role
from keyportal import once
from keyportal.forms import add_service_errors
from keyportal.rendering import render_page
from projects import secrets, selectors
from projects.models import SECRET_NAME_MAX_LENGTH, Environment, Secret


class ValueInput(forms.Textarea):
    """A textarea that never renders its value: a secret typed once is not echoed into HTML."""

    def format_value(self, value):
        return None


class SecretForm(forms.Form):
    name = forms.CharField(
        label="Name",
        max_length=SECRET_NAME_MAX_LENGTH,
        help_text="An environment variable name, such as DATABASE_URL. "
        "An existing name gets a new version.",
        error_messages={"required": "Name is required."},
        validators=[secrets.validate_secret_name],
        widget=forms.TextInput(
            attrs={"class": "mono", "autocomplete": "off", "spellcheck": "false"}
        ),
    )
    value = forms.CharField(
        label="Value",
        strip=False,
        help_text="At most 64 KB. It is encrypted at once and never shown here again.",
        error_messages={"required": "Value is required."},
        widget=ValueInput(
            attrs={
                "rows": 3,
                "class": "mono secret-value",
                "autocomplete": "off",
                "autocapitalize": "off",
                "spellcheck": "false",
            }
        ),
    )

    def clean_value(self) -> str:
        # Browsers send a textarea's line breaks as CRLF; a pasted PEM key should keep its LFs.
        value = self.cleaned_data["value"].replace("\r\n", "\n")
        secrets.validate_secret_value(value)
        return value


def _require_admin(request: HttpRequest) -> None:
    if not has_role(request.membership, Role.ADMIN):
        raise PermissionDenied(ROLE_NEEDED_MESSAGE[Role.ADMIN])


def _environment(request: HttpRequest, pk: int) -> Environment:
    return get_object_or_404(selectors.environment_list(organization=request.organization), pk=pk)


def _secret(request: HttpRequest, pk: int, name: str) -> Secret:
    environment = _environment(request, pk)
    return get_object_or_404(
        Secret.objects.select_related("environment__target__project"),
        environment=environment,
        name=name,
    )


@org_view
@require_http_methods(["GET", "POST"])
@sensitive_post_parameters("value")
def secret_list(request: HttpRequest, pk: int) -> HttpResponse:
    """List an environment's secrets; owners and admins set values."""
    environment = _environment(request, pk)
    form = SecretForm(request.POST or None)
    if request.method == "POST":
        _require_admin(request)
        if form.is_valid():
            try:
                version = secrets.secret_set(
                    actor=actor_from_request(request), environment=environment, **form.cleaned_data
                )
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                name = version.secret.name
                messages.success(request, f"Secret “{name}” saved as version {version.version}.")
                if not request.htmx:
                    return redirect("secret_list", org=request.organization.slug, pk=pk)
                form = SecretForm()
    context = {
        "environment": environment,
        "secrets": secrets.secret_list(environment=environment),
        "encryption_key": secrets.encryption_key_find(environment=environment),
        "form": form,
    }
    return render_page(request, "projects/secrets.html", context, partial="secret-list")


@org_view
@require_GET
def secret_versions(request: HttpRequest, pk: int, name: str) -> HttpResponse:
    """List a secret's versions: when, by whom, from where; never their values."""
    secret = _secret(request, pk, name)
    context = {
        "environment": secret.environment,
        "secret": secret,
        "versions": secrets.secret_versions(secret=secret),
    }
    return render(request, "projects/secret_versions.html", context)


@org_view(role=Role.ADMIN)
@require_http_methods(["GET", "POST"])
@once.replays
def secret_purge(request: HttpRequest, pk: int, name: str) -> HttpResponse:
    """Confirm, then delete a secret and all its versions for good."""
    secret = _secret(request, pk, name)
    if request.method == "POST":
        secrets.secret_purge(actor=actor_from_request(request), secret=secret)
        messages.success(request, f"Secret “{secret.name}” and all its versions were deleted.")
        return redirect("secret_list", org=request.organization.slug, pk=pk)
    context = {"environment": secret.environment, "secret": secret}
    return render(request, "projects/secret_purge.html", context)


@org_view(role=Role.ADMIN)
@require_http_methods(["GET", "POST"])
@once.replays
def secret_restore(request: HttpRequest, pk: int, name: str, version: int) -> HttpResponse:
    """Confirm, then make an old version's value current again as a new version."""
    secret = _secret(request, pk, name)
    old = get_object_or_404(secrets.secret_versions(secret=secret), version=version)
    if request.method == "POST":
        restored = secrets.secret_restore(actor=actor_from_request(request), version=old)
        messages.success(
            request,
            f"Version {old.version} of “{secret.name}” restored as version {restored.version}.",
        )
        return redirect("secret_versions", org=request.organization.slug, pk=pk, name=name)
    context = {"environment": secret.environment, "secret": secret, "version": old}
    return render(request, "projects/secret_restore.html", context)
