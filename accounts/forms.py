"""Forms for signing up, logging in, invitations, members and service accounts."""

from __future__ import annotations

from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm

from accounts.models import NAME_MAX_LENGTH, Role, User
from keyportal.validators import validate_display_name


def name_field(label: str = "Name", required: bool = True, **kwargs) -> forms.CharField:
    """Return the product's standard name field: trimmed, at most 100 characters, safe to show."""
    validators = [validate_display_name, *kwargs.pop("validators", ())]
    return forms.CharField(
        label=label,
        max_length=NAME_MAX_LENGTH,
        required=required,
        validators=validators,
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


def email_field() -> forms.EmailField:
    """Return an email field whose messages say what to type."""
    return forms.EmailField(
        label="Email",
        error_messages={
            "required": "Email is required.",
            "invalid": "Enter a valid email address, like ada@example.com.",
        },
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )


class SignupForm(forms.Form):
    """Step 1 of signing up: who you are and your organization; the password comes by email."""

    display_name = name_field("Your name", widget=forms.TextInput(attrs={"autocomplete": "name"}))
    email = email_field()
    organization_name = name_field("Organization name")

    def clean_email(self) -> str:
        return self.cleaned_data["email"].strip().lower()


class NewPasswordForm(forms.Form):
    """A new password, checked by Django's validators against the person it will belong to."""

    password = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 8 characters, not too common and not all numbers.",
        error_messages={"required": "Password is required."},
    )

    def candidate(self, cleaned: dict) -> User:
        """Return the unsaved person the password is for, to compare it with their details."""
        raise NotImplementedError

    def clean(self):
        cleaned = super().clean()
        password = cleaned.get("password")
        if password:
            try:
                password_validation.validate_password(password, self.candidate(cleaned))
            except forms.ValidationError as error:
                self.add_error("password", error)
        return cleaned


class SignupPasswordForm(NewPasswordForm):
    """Step 2 of signing up, reached from the emailed link: the password only."""

    def __init__(self, *args, email: str, display_name: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.email = email
        self.display_name = display_name

    def candidate(self, cleaned: dict) -> User:
        return User(email=self.email, display_name=self.display_name)


class InvitationSignupForm(NewPasswordForm):
    """Signing up from an invitation: the link proves the email, which is fixed."""

    display_name = name_field("Your name", widget=forms.TextInput(attrs={"autocomplete": "name"}))
    email = email_field()
    field_order = ["display_name", "email", "password"]

    def __init__(self, *args, invitation, **kwargs):
        super().__init__(*args, **kwargs)
        self.invitation = invitation
        self.fields["email"].initial = invitation.email
        self.fields["email"].disabled = True

    def candidate(self, cleaned: dict) -> User:
        return User(email=self.invitation.email, display_name=cleaned.get("display_name", ""))


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
