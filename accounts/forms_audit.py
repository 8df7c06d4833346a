"""The audit log's filters: actor, event and a range of whole days, from the query string.

The filters live in the URL, so a reloaded page, the back button, a shared link and the CSV
export all show the same events. Bad values never reach a query: the form says what is wrong,
next to the field.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlencode

from django import forms
from django.utils import timezone

from accounts.models import AuditEventType
from keyportal.forms import FilterForm

# The event select: every AuditEventType, under its group and by its label.
EVENT_CHOICES = [("", "Any event"), *AuditEventType.grouped_choices()]
DATE_ERRORS = {"invalid": "Enter a date as YYYY-MM-DD, such as 2025-03-31."}


def date_field(label: str) -> forms.DateField:
    """Return a date picker that accepts only ISO dates, what every date input sends."""
    return forms.DateField(
        label=label,
        required=False,
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages=DATE_ERRORS,
    )


def start_of_day(day: date) -> datetime:
    """Return midnight at the start of `day` in the site's time zone, as UTC."""
    try:
        local = datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())
        return local.astimezone(UTC)
    except OverflowError:
        # 1 January of year 1 east of UTC begins before the first moment a datetime holds.
        return datetime.min.replace(tzinfo=UTC)


class AuditFilterForm(FilterForm):
    """The filters above the audit log, and of its CSV export."""

    actor = forms.CharField(
        label="Actor",
        required=False,
        max_length=254,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Name, email or key"}),
        error_messages={"max_length": "Search for at most 254 characters."},
    )
    event = forms.ChoiceField(
        label="Event",
        required=False,
        choices=EVENT_CHOICES,
        error_messages={"invalid_choice": "Choose an event from the list."},
    )
    date_from = date_field("From date")
    date_to = date_field("To date")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # The error slots are always on the page (htmx refills them), so the inputs always
        # point at them, not only when the page was rendered with errors.
        for name, field in self.fields.items():
            field.widget.attrs["aria-describedby"] = f"{self[name].auto_id}_error"

    def clean(self) -> dict:
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and end < start:
            self.add_error("date_to", "The to date must be on or after the from date.")
        return data

    def querystring(self) -> str:
        """Return the filters given, as a query string ("" for none), for links that keep them."""
        return urlencode({name: self.data[name] for name in self.fields if self.data.get(name)})

    def selector_filters(self) -> dict:
        """Return the valid filters as `audit_event_list` takes them: whole days, both included."""
        data = self.cleaned_data
        start, end = data.get("date_from"), data.get("date_to")
        return {
            "actor": data.get("actor") or None,
            "action": data.get("event") or None,
            "since": start_of_day(start) if start else None,
            # The day after the to date, exclusive: the whole of the last day, to the microsecond.
            "until": start_of_day(end + timedelta(days=1)) if end and end < date.max else None,
        }

    def error_text(self) -> str:
        """Return the errors as plain text, one line per field, for the CSV export's 400."""
        lines = ["The filters are not valid:"]
        for name, errors in self.errors.items():
            label = self.fields[name].label if name in self.fields else "Filters"
            lines += [f"- {label}: {error}" for error in errors]
        return "\n".join(lines) + "\n"
