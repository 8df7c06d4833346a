"""The public form to report a leaked key."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from keyportal_cli.names import unsafe_character
from keyportal_cli.tokens import has_token_format

LOCATION_MAX_LENGTH = 500
NOT_A_KEY = (
    "This is not a whole keyportal key: paste it again, all of it (keyportal keys start with "
    "sk-user-, sk-svc-, sk-org- or sk-project-). A key of another service goes to that service."
)


class UnechoedTextInput(forms.TextInput):
    """A text input that never writes a submitted value back into the page (as PasswordInput
    does, but shown as typed): a form shown again with an error must not hold the key."""

    def get_context(self, name, value, attrs):
        return super().get_context(name, None, attrs)


def _validate_safe_text(value: str) -> None:
    character = unsafe_character(value)
    if character is not None:
        raise ValidationError(
            f"Leave out control characters and text-direction overrides (U+{ord(character):04X})."
        )


class LeakReportForm(forms.Form):
    token = forms.CharField(
        label="The leaked key",
        max_length=1000,
        help_text="The whole key, from sk- to its last character.",
        widget=UnechoedTextInput(
            attrs={
                "autocomplete": "off",
                "spellcheck": "false",
                "autocapitalize": "off",
                "autocorrect": "off",
                "class": "mono",
            }
        ),
        error_messages={
            "required": "Paste the key you found.",
            "max_length": NOT_A_KEY,
        },
    )
    location = forms.CharField(
        label="Where did you find it? (optional)",
        required=False,
        max_length=LOCATION_MAX_LENGTH,
        help_text="An address, or a file and line: it helps the key's owner clean up.",
        validators=[_validate_safe_text],
        error_messages={
            "max_length": f"Keep it to at most {LOCATION_MAX_LENGTH} characters.",
        },
    )

    def clean_token(self) -> str:
        token = self.cleaned_data["token"]
        # The format and checksum only, no lookup: it tells nothing about which keys exist.
        if not has_token_format(token):
            raise ValidationError(NOT_A_KEY)
        return token
