"""The organization's audit log (owners and admins): filters, pages of 50 and a CSV export."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from datetime import UTC

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from accounts.access import org_view
from accounts.forms_audit import AuditFilterForm
from accounts.models import AuditEvent, Role
from accounts.selectors import audit_event_list
from keyportal.pagination import paginate
from keyportal.rendering import render_page

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
