"""Creating and rotating keys: the form in a dialog, then the plaintext shown exactly once."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from accounts.access import Refused, actor_from_request, org_view
from apikeys import authority
from apikeys.authority import Act
from apikeys.forms import ApiKeyForm, RotateForm, add_refusal
from apikeys.forms_protections import ProtectionsForm
from apikeys.models import ApiKey
from apikeys.places import Place, key_place
from apikeys.policy import policy_for
from apikeys.scopes import scope_choices
from apikeys.selectors import api_key_get, api_key_list
from apikeys.services import api_key_create, api_key_rotate
from keyportal import once
from keyportal.forms import add_service_errors
from keyportal.rendering import render_page


def key_form(
    request: HttpRequest,
    place: Place,
    *,
    data=None,
    initial=None,
    editing=False,
    held: frozenset[str] = frozenset(),
) -> ApiKeyForm:
    """Return the key form for a place, offering what the person holds (and, when editing,
    what the key holds, which they may take away) and what the policy allows."""
    org = request.organization
    holds = authority.actor_power(actor_from_request(request), org.pk).permissions
    return ApiKeyForm(
        data,
        # Its own ids: the dialog opens over pages with forms of their own (a "Name" too).
        auto_id="key_%s",
        initial=initial,
        kind=place.kind,
        ceiling=holds | held,
        scope_choices=scope_choices(org, place.project),
        whole_label=place.whole_label,
        policy=policy_for(organization=org, kind=place.kind),
        editing=editing,
    )


def reveal(
    request: HttpRequest, api_key: ApiKey, token: str, *, back: str, rotated: bool
) -> HttpResponse:
    """Render the one response that carries a key's plaintext; nothing may store it.

    The form's one-time token remembers which key it made (never its secret), so that the same
    form sent again (a reload of this page, a double click) makes no second key.
    """
    once.remember(request, {"key": api_key.pk})
    # Every variable the template reads is given: Django's template engine logs a missing one
    # at DEBUG with the whole context, which here holds the plaintext.
    context = {
        "api_key": api_key,
        "token": token,
        "back": back,
        "rotated": rotated,
        "already": False,
    }
    response = render_page(
        request, "apikeys/key_reveal.html", context, partial="key-reveal", status=201
    )
    response["Cache-Control"] = "no-store"
    response["Pragma"] = "no-cache"
    return response


def already_revealed(request: HttpRequest, *, rotated: bool) -> HttpResponse | None:
    """Answer a create or rotate form sent again after the first one was answered."""
    first = once.answered(request)
    if first is None or "key" not in first:
        return None
    return already(request, rotated=rotated, first=first)


def already(request: HttpRequest, *, rotated: bool, first: dict | None) -> HttpResponse:
    """Say that the first sending of this form made (or is making) the key, and showed its
    secret: nothing is made twice, and the secret is never shown again."""
    api_key = None
    if first is not None and "key" in first:
        keys = api_key_list(actor=actor_from_request(request), organization=request.organization)
        api_key = keys.filter(pk=first["key"]).first()
    context = {"api_key": api_key, "already": True, "rotated": rotated}
    return render_page(request, "apikeys/key_reveal.html", context, partial="key-reveal")


@org_view
@require_http_methods(["GET", "POST"])
def api_key_create_view(request: HttpRequest, kind: str, owner: int | None = None) -> HttpResponse:
    """Show the create form (in the dialog, or as a page), then reveal the new key once."""
    try:
        place = key_place(request, kind, owner)
    except Refused as refused:
        if request.method == "POST":
            authority.record_refusal(actor_from_request(request), refused, request.organization)
        raise
    if (again := already_revealed(request, rotated=False)) is not None:
        return again
    # Bound on any POST, an empty one included: a name alone, or nothing, makes a key.
    data = request.POST if request.method == "POST" else None
    form = key_form(request, place, data=data)
    protections = ProtectionsForm(
        data, auto_id="key_%s", policy=policy_for(organization=request.organization, kind=kind)
    )
    # Both forms checked, so that every problem shows at once.
    if request.method == "POST" and all([form.is_valid(), protections.is_valid()]):
        if not once.claim(request):
            return already(request, rotated=False, first=once.answer_awaited(request))
        try:
            api_key, token = api_key_create(
                actor=actor_from_request(request),
                organization=request.organization,
                kind=kind,
                owner=place.owner,
                name=form.cleaned_data["name"],
                permissions=form.cleaned_data["permissions"],
                scopes=form.cleaned_data["scopes"],
                preset=form.cleaned_data["preset"],
                expires_at=form.cleaned_data.get("expires_at"),
                **protections.create_arguments(),
            )
        except Refused as refused:
            once.release(request)
            add_refusal(form, refused)
        except ValidationError as error:
            once.release(request)
            if (rest := protections.add_service_errors(error)) is not None:
                add_service_errors(form, rest)
        except BaseException:
            once.release(request)
            raise
        else:
            return reveal(request, api_key, token, back=place.page_url, rotated=False)
    context = {"form": form, "protections": protections, "place": place, "action": request.path}
    return render_page(request, "apikeys/key_form.html", context, partial="key-form")


@org_view
@require_http_methods(["GET", "POST"])
def api_key_rotate_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Choose when the old secret stops, then reveal the new one once."""
    actor = actor_from_request(request)
    act = Act.ROTATE if request.method == "POST" else Act.SEE
    api_key = api_key_get(actor=actor, organization=request.organization, pk=pk, act=act)
    if request.method == "GET":
        authority.check(actor, Act.ROTATE, api_key)
    if (again := already_revealed(request, rotated=True)) is not None:
        return again
    form = RotateForm(request.POST or None)
    back = reverse("api_key_detail", kwargs={"org": request.organization.slug, "pk": api_key.pk})
    if request.method == "POST" and form.is_valid():
        if not once.claim(request):
            return already(request, rotated=True, first=once.answer_awaited(request))
        try:
            api_key, token = api_key_rotate(
                actor=actor, api_key=api_key, grace=form.cleaned_data["grace"]
            )
        except ValidationError as error:
            once.release(request)
            add_service_errors(form, error)
        except BaseException:
            once.release(request)
            raise
        else:
            return reveal(request, api_key, token, back=back, rotated=True)
    context = {"form": form, "api_key": api_key, "back": back}
    return render_page(request, "apikeys/key_rotate.html", context, partial="key-rotate")
