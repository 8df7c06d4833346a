"""Validators shared by the console's forms, the API's schemas and the services."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from keyportal_cli.names import name_problem


def validate_display_name(name: str) -> None:
    """Refuse a name holding control characters or text-direction overrides.

    The name of a key, organization, team, project, target, environment, app or service
    account, or a person's display name: all are shown to other people, in the console, the
    CLI's tables and the audit log.
    """
    problem = name_problem(name)
    if problem is not None:
        raise ValidationError(problem, code="unsafe_name")
