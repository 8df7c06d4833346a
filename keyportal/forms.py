"""The console's form renderer: every field as label, input, help and error, in that order."""

from django import forms
from django.forms.renderers import TemplatesSetting


class ConsoleFormRenderer(TemplatesSetting):
    field_template_name = "_field.html"


class FilterForm(forms.Form):
    """A list's filters, read from the query string (GET data)."""

    @property
    def is_filtered(self) -> bool:
        """Return True when any filter of the form was given a value."""
        return self.is_bound and any(self.data.get(name) for name in self.fields)


def add_service_errors(form, error) -> None:
    """Attach a service's ValidationError to the form: to its fields where they exist."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for field, messages in error.message_dict.items():
        form.add_error(field if field in form.fields else None, messages)
