"""Forms for signing up, logging in, invitations, members and service accounts."""

from __future__ import annotations

from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm

from accounts.models import NAME_MAX_LENGTH, Role


def name_field(label: str = "Name", required: bool = True, **kwargs) -> forms.CharField:
    """Return the product's standard name field: trimmed, at most 100 characters."""
    return forms.CharField(
        label=label,
        max_length=NAME_MAX_LENGTH,
        required=required,
        error_messages={
            "required": f"{label} is required.",
            "max_length": f"{label} must be at most {NAME_MAX_LENGTH} characters.",
        },
        **kwargs,
    )


INVALID_LOGIN = "That email and password do not match an account. Check both and try again."


class LoginForm(AuthenticationForm):
    """Email and password; the same message whether the email exists or not."""

    error_messages = {
        "invalid_login": INVALID_LOGIN,
        "inactive": INVALID_LOGIN,
    }

    def __init__(self, request=None, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        self.fields["username"].label = "Email"
        self.fields["username"].widget = forms.EmailInput(
            attrs={"autocomplete": "email", "autofocus": True}
        )


class SignupForm(forms.Form):
    display_name = name_field("Your name", widget=forms.TextInput(attrs={"autocomplete": "name"}))
    email = forms.EmailField(
        label="Email",
        error_messages={"invalid": "Enter a valid email address, like ada@example.com."},
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    password = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 8 characters, not too common and not all numbers.",
    )
    organization_name = name_field("Organization name")

    def __init__(self, *args, invitation=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.invitation = invitation
        if invitation is not None:
            # Joining by invitation: the email is the invited one and no organization is created.
            del self.fields["organization_name"]
            self.fields["email"].initial = invitation.email
            self.fields["email"].disabled = True

    def clean_email(self) -> str:
        return self.cleaned_data["email"].strip().lower()

    def clean(self):
        cleaned = super().clean()
        password = cleaned.get("password")
        if password:
            from accounts.models import User

            candidate = User(
                email=cleaned.get("email", ""), display_name=cleaned.get("display_name", "")
            )
            try:
                password_validation.validate_password(password, candidate)
            except forms.ValidationError as error:
                self.add_error("password", error)
        return cleaned


class OrganizationForm(forms.Form):
    name = name_field("Organization name")


ROLE_CHOICES = Role.choices
ROLE_ERRORS = {"invalid_choice": "Choose a role: owner, admin or member."}


class InvitationForm(forms.Form):
    email = forms.EmailField(
        label="Email",
        error_messages={
            "required": "Email is required.",
            "invalid": "Enter a valid email address, like ada@example.com.",
        },
    )
    role = forms.ChoiceField(
        label="Role", choices=ROLE_CHOICES, initial=Role.MEMBER, error_messages=ROLE_ERRORS
    )


class RoleForm(forms.Form):
    role = forms.ChoiceField(label="Role", choices=ROLE_CHOICES, error_messages=ROLE_ERRORS)


class ServiceAccountForm(forms.Form):
    name = name_field()
    description = forms.CharField(
        label="Description",
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
