"""The console's form renderer: every field as label, input, help and error, in that order."""

from django.forms.renderers import TemplatesSetting


class ConsoleFormRenderer(TemplatesSetting):
    field_template_name = "_field.html"


def add_service_errors(form, error) -> None:
    """Attach a service's ValidationError to the form: to its fields where they exist."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for field, messages in error.message_dict.items():
        form.add_error(field if field in form.fields else None, messages)
