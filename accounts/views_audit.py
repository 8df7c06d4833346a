"""The organization's audit log (owners and admins): filters, pages of 50 and a CSV export."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import UTC

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from accounts.access import actor_from_request, org_view
from accounts.forms_audit import AuditFilterForm
from accounts.models import AuditEvent, Role, User
from accounts.selectors import audit_event_list, member_list, service_account_list
from apikeys.selectors import api_key_list
from keyportal.pagination import paginate
from keyportal.rendering import render_page
from projects.selectors import project_list

TEMPLATE = "accounts/audit_log.html"
CSV_HEADER = (
    "time",
    "actor",
    "actor_key_id",
    "origin",
    "event",
    "target_type",
    "target_id",
    "target",
    "address",
    "detail",
)
# The page each kind of target links to, and whether its URL takes the target's pk.
TARGET_PAGES = {
    "apikey": ("api_key_detail", True),
    "serviceaccount": ("service_account_detail", True),
    "project": ("project_detail", True),
    "user": ("member_list", False),
}
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@org_view(role=Role.ADMIN, hidden=True)
@require_safe
def audit_log(request: HttpRequest) -> HttpResponse:
    """List the organization's history, newest first and filtered as the query string says."""
    filters = AuditFilterForm(request.GET)
    page, page_note = None, ""
    if filters.is_valid():
        events = audit_event_list(organization=request.organization, **filters.selector_filters())
        page, page_note = paginate(events, request.GET.get("page"))
        # A list, not the page's queryset: the rows the template shows carry their links.
        page.object_list = link_targets(request, list(page.object_list))
    export_url = reverse("audit_log_csv", kwargs={"org": request.organization.slug})
    query = filters.querystring()
    context = {
        "filters": filters,
        "page": page,
        "page_note": page_note,
        "export_url": f"{export_url}?{query}" if query else export_url,
        # Only a fragment swap needs the field errors sent alongside, out of band.
        "errors_out_of_band": bool(request.htmx)
        and not (request.htmx.boosted or request.htmx.history_restore_request),
    }
    return render_page(request, TEMPLATE, context, partial="audit-table")


@org_view(role=Role.ADMIN, hidden=True)
@require_safe
@never_cache
def audit_log_csv(request: HttpRequest) -> HttpResponse:
    """Stream every event the filters match as CSV, newest first; bad filters are a 400."""
    filters = AuditFilterForm(request.GET)
    if not filters.is_valid():
        return HttpResponseBadRequest(
            filters.error_text(), content_type="text/plain; charset=utf-8"
        )
    events = audit_event_list(organization=request.organization, **filters.selector_filters())
    response = StreamingHttpResponse(
        csv_lines(events.iterator(chunk_size=1000)), content_type="text/csv; charset=utf-8"
    )
    filename = f"keyportal-audit-{request.organization.slug}-{timezone.localdate():%Y%m%d}.csv"
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return response


def link_targets(request: HttpRequest, events: list[AuditEvent]) -> list[AuditEvent]:
    """Return the events, each with the URL of its target's page as `target_url` where the
    target still exists for the viewer (else None): one query per kind of target."""
    wanted: dict[str, set[int]] = defaultdict(set)
    for event in events:
        if (
            event.target_type in TARGET_PAGES
            and event.target_id.isascii()
            and event.target_id.isdigit()
        ):
            wanted[event.target_type].add(int(event.target_id))
    organization = request.organization
    found = {
        kind: {
            str(pk)
            for pk in existing(request, kind).filter(pk__in=ids).values_list("pk", flat=True)
        }
        for kind, ids in wanted.items()
    }
    for event in events:
        event.target_url = None
        if event.target_id in found.get(event.target_type, ()):
            route, with_pk = TARGET_PAGES[event.target_type]
            kwargs = {"org": organization.slug, **({"pk": event.target_id} if with_pk else {})}
            event.target_url = reverse(route, kwargs=kwargs)
    return events


def existing(request: HttpRequest, kind: str) -> QuerySet:
    """Return the targets of one kind that still exist for the viewer, keyed by their pk."""
    organization = request.organization
    match kind:
        case "apikey":
            return api_key_list(actor=actor_from_request(request), organization=organization)
        case "serviceaccount":
            return service_account_list(organization=organization)
        case "project":
            return project_list(organization=organization)
        case "user":
            # A person's page is the members page, while they are a member.
            members = member_list(organization=organization)
            return User.objects.filter(pk__in=members.values("user_id"))
    raise ValueError(kind)


class _Echo:
    """A file that hands back what is written to it, so csv.writer can feed a stream."""

    def write(self, value: str) -> str:
        return value


def csv_lines(events: Iterable[AuditEvent]) -> Iterator[str]:
    """Yield the CSV header, then one line per event."""
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_HEADER)
    for event in events:
        yield writer.writerow([neutralise(cell) for cell in csv_row(event)])


def csv_row(event: AuditEvent) -> list[str]:
    """Return an event's cells: the time in UTC (ISO 8601) and the detail as JSON."""
    return [
        event.created_at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        event.actor_label,
        "" if event.actor_key_id is None else str(event.actor_key_id),
        event.origin,
        event.action,
        event.target_type,
        event.target_id,
        event.target_label,
        event.ip_address,
        json.dumps(event.detail, ensure_ascii=False, sort_keys=True),
    ]


def neutralise(cell: str) -> str:
    """Return the cell with a leading apostrophe when a spreadsheet would run it as a formula."""
    return f"'{cell}" if cell.startswith(FORMULA_STARTS) else cell
