"""The product's name field, as every console form with a name uses it."""

from __future__ import annotations

import pytest
from django import forms

from accounts.forms import (
    OrganizationForm,
    ServiceAccountForm,
    SignupForm,
    name_field,
)
from projects.forms import NameForm

MESSAGE = "Names cannot contain control characters or text-direction overrides ({})."


class Named(forms.Form):
    name = name_field()


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("two\nlines", "U+000A"),
        ("tab\there", "U+0009"),
        ("bell\x07", "U+0007"),
        ("invoice-\u202efdp.exe", "U+202E"),
        ("\u2067isolate\u2069", "U+2067"),
        ("mark\u200f", "U+200F"),
    ],
)
def test_the_name_field_refuses_control_and_direction_characters(name, code):
    """The field refuses the name with the message naming the character."""
    form = Named({"name": name})
    assert not form.is_valid()
    assert form.errors["name"] == [MESSAGE.format(code)]


def test_whitespace_around_a_name_is_trimmed_not_refused():
    """A newline typed after a name (a paste) is trimmed as spaces are; only inside is it refused."""
    form = Named({"name": "  Payments\n"})
    assert form.is_valid()
    assert form.cleaned_data["name"] == "Payments"


def test_validators_given_to_the_field_are_kept():
    """A form adding its own validator to a name keeps the rule too."""

    def no_admin(value):
        if value == "admin":
            raise forms.ValidationError("Reserved.")

    class Strict(forms.Form):
        name = name_field(validators=[no_admin])

    assert Strict({"name": "admin"}).errors["name"] == ["Reserved."]
    assert Strict({"name": "a\u202eb"}).errors["name"] == [MESSAGE.format("U+202E")]


@pytest.mark.parametrize(
    ("form_class", "data", "field"),
    [
        (SignupForm, {"email": "a@example.test", "organization_name": "Acme"}, "display_name"),
        (SignupForm, {"email": "a@example.test", "display_name": "Ada"}, "organization_name"),
        (OrganizationForm, {}, "name"),
        (ServiceAccountForm, {"description": ""}, "name"),
        (NameForm, {}, "name"),
    ],
)
def test_every_name_of_the_accounts_and_projects_forms_is_checked(form_class, data, field):
    """Display names, organization, service account and hierarchy names: all refuse it."""
    form = form_class({**data, field: "deploy\u202ebot"})
    assert not form.is_valid()
    assert form.errors[field] == [MESSAGE.format("U+202E")]
