"""Forms for the project hierarchy and apps."""

from __future__ import annotations

from django import forms
from django.utils.text import slugify

from accounts.forms import name_field


class NameForm(forms.Form):
    name = name_field()


class ProjectForm(forms.Form):
    name = name_field()
    team = forms.ModelChoiceField(
        label="Team",
        queryset=None,
        empty_label=None,
        error_messages={"invalid_choice": "Choose one of this organization's teams."},
    )

    def __init__(self, *args, teams, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = teams


class AppForm(forms.Form):
    name = name_field()
    slug = forms.RegexField(
        label="Slug",
        regex=r"^[a-z0-9]+(?:-[a-z0-9]+)*$",
        max_length=60,
        required=False,
        help_text="Lowercase letters, digits and hyphens; left blank, it is made from the name.",
        error_messages={"invalid": "Use only lowercase letters, digits and single hyphens."},
    )
    project = forms.ModelChoiceField(
        label="Project",
        queryset=None,
        empty_label=None,
        error_messages={"invalid_choice": "Choose one of this organization's projects."},
    )

    def __init__(self, *args, projects, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = projects

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("slug") and cleaned.get("name"):
            cleaned["slug"] = slugify(cleaned["name"])[:60]
            if not cleaned["slug"]:
                self.add_error(
                    "slug", "Enter a slug: the name has no letters or digits to make one from."
                )
        return cleaned
