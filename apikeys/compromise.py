"""A compromised key's report as the API shows it.

The report comes from outside (GitHub's signed alert, or whoever holds the key), so it is read
field by field: only the fields named here leave it, and only as text of a sane length.
(The key's page shows it with templates/apikeys/_key_compromised.html.)
"""

from __future__ import annotations

from apikeys.models import ApiKey

# The report's fields that may be shown, with what the mail calls them; anything else stored in
# it stays in the database.
REPORT_LABELS = {
    "repository": "Repository",
    "file": "File",
    "commit": "Commit",
    "url": "Address",
    "location": "Where, as the person reporting it wrote",
}
REPORT_FIELDS = tuple(REPORT_LABELS)
MAX_TEXT = 500


def report_text(value) -> str:
    """Return a report field as text: strings and numbers only, cut to 500 characters."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return ""
    text = str(value).strip()
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def report_fields(api_key: ApiKey) -> dict[str, str]:
    """Return the report's showable fields that have a value."""
    report = api_key.compromise_report if isinstance(api_key.compromise_report, dict) else {}
    fields = {name: report_text(report.get(name)) for name in REPORT_FIELDS}
    return {name: text for name, text in fields.items() if text}


def compromise_out(api_key: ApiKey) -> dict | None:
    """Return who reported the key leaked and the report's showable fields; None when the key
    is not compromised."""
    if not api_key.is_compromised:
        return None
    return {"reported_by": api_key.compromised_source or None, **report_fields(api_key)}
