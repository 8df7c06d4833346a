"""Writes for teams, projects, targets, environments and apps; each records its history row."""

from __future__ import annotations

from typing import IO

from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import IntegrityError, models, transaction
from django.db.models import Max

from accounts.access import Actor
from accounts.models import AuditEventType, Organization, Team
from accounts.services import audit_record
from keyportal.validators import validate_display_name
from projects.bundles import check_bundle
from projects.models import ApiKeyAccess, App, AppVersion, Environment, Project, Target

# Where each kind's names must be unique (ignoring case): the field naming the parent.
_PARENT_FIELD = {
    Team: "organization",
    Project: "organization",
    Target: "project",
    Environment: "target",
}


def organization_of(obj: models.Model) -> Organization:
    """Return the organization a hierarchy object belongs to."""
    match obj:
        case Target():
            return obj.project.organization
        case Environment():
            return obj.target.project.organization
        case _:
            return obj.organization


# The events of renaming and deleting each kind that hierarchy_rename and hierarchy_delete take.
_RENAMED = {
    Team: AuditEventType.TEAM_RENAMED,
    Project: AuditEventType.PROJECT_RENAMED,
    Target: AuditEventType.TARGET_RENAMED,
    Environment: AuditEventType.ENVIRONMENT_RENAMED,
    App: AuditEventType.APP_RENAMED,
}
_DELETED = {
    Team: AuditEventType.TEAM_DELETED,
    Project: AuditEventType.PROJECT_DELETED,
    Target: AuditEventType.TARGET_DELETED,
    Environment: AuditEventType.ENVIRONMENT_DELETED,
    App: AuditEventType.APP_DELETED,
}


def _kind(obj: models.Model) -> str:
    return obj._meta.verbose_name


def _duplicate(obj: models.Model, field: str) -> ValidationError:
    article = "An" if _kind(obj)[0] in "aeiou" else "A"
    where = _PARENT_FIELD.get(type(obj), "organization")
    value = getattr(obj, field)
    message = f"{article} {_kind(obj)} with the {field} “{value}” already exists in this {where}."
    return ValidationError({field: message})


def _name_taken(obj: models.Model) -> bool:
    # The database's unique constraint on Lower(name) is the guard against races, but SQLite's
    # LOWER() folds only ASCII; comparing casefolded names here makes "Équipe" equal "équipe".
    parent = _PARENT_FIELD.get(type(obj))
    if parent is None:
        return False
    siblings = type(obj).objects.filter(**{parent: getattr(obj, parent)}).exclude(pk=obj.pk)
    name = obj.name.casefold()
    return any(other.casefold() == name for other in siblings.values_list("name", flat=True))


def _save_named(
    *,
    actor: Actor,
    obj: models.Model,
    event: AuditEventType,
    detail: dict | None = None,
    update_fields: list[str] | None = None,
):
    """Save a named object and its history row; a duplicate name becomes a field error."""
    try:
        validate_display_name(obj.name)
    except ValidationError as error:
        raise ValidationError({"name": error.messages}) from None
    if _name_taken(obj):
        raise _duplicate(obj, "name")
    try:
        with transaction.atomic():
            obj.save(update_fields=update_fields)
            audit_record(
                actor=actor,
                organization=organization_of(obj),
                action=event,
                target=obj,
                detail=detail,
            )
    except IntegrityError:
        raise _duplicate(
            obj, "slug" if isinstance(obj, App) and event == AuditEventType.APP_CREATED else "name"
        ) from None
    return obj


def team_create(*, actor: Actor, organization: Organization, name: str) -> Team:
    """Create a team."""
    return _save_named(
        actor=actor,
        obj=Team(organization=organization, name=name),
        event=AuditEventType.TEAM_CREATED,
    )


def project_create(*, actor: Actor, team: Team, name: str) -> Project:
    """Create a project in a team."""
    project = Project(organization=team.organization, team=team, name=name)
    return _save_named(actor=actor, obj=project, event=AuditEventType.PROJECT_CREATED)


def target_create(*, actor: Actor, project: Project, name: str) -> Target:
    """Create a target in a project."""
    target = Target(project=project, name=name)
    return _save_named(actor=actor, obj=target, event=AuditEventType.TARGET_CREATED)


def environment_create(*, actor: Actor, target: Target, name: str) -> Environment:
    """Create an environment in a target."""
    environment = Environment(target=target, name=name)
    return _save_named(actor=actor, obj=environment, event=AuditEventType.ENVIRONMENT_CREATED)


def app_create(*, actor: Actor, project: Project, name: str, slug: str) -> App:
    """Create an app in a project; API keys have no access to it until its sharing allows."""
    app = App(organization=project.organization, project=project, name=name, slug=slug)
    return _save_named(actor=actor, obj=app, event=AuditEventType.APP_CREATED)


def hierarchy_rename(*, actor: Actor, obj: models.Model, name: str) -> models.Model:
    """Rename a team, project, target, environment or app."""
    previous = obj.name
    obj.name = name
    try:
        return _save_named(
            actor=actor,
            obj=obj,
            event=_RENAMED[type(obj)],
            detail={"from": previous},
            update_fields=["name"],
        )
    except ValidationError:
        obj.name = previous
        raise


def hierarchy_delete(*, actor: Actor, obj: models.Model) -> None:
    """Delete a team, project, target, environment or app with everything under it."""
    with transaction.atomic():
        audit_record(
            actor=actor,
            organization=organization_of(obj),
            action=_DELETED[type(obj)],
            target=obj,
        )
        obj.delete()


def app_set_sharing(*, actor: Actor, app: App, access: str) -> App:
    """Say whether API keys may touch the app; it holds from the very next request."""
    if access not in ApiKeyAccess.values:
        raise ValidationError({"api_key_access": "Choose “Can edit” or “No access”."})
    with transaction.atomic():
        previous = app.api_key_access
        app.api_key_access = access
        app.save(update_fields=["api_key_access"])
        audit_record(
            actor=actor,
            organization=app.organization,
            action=AuditEventType.APP_SHARING_CHANGED,
            target=app,
            detail={"from": previous, "to": access},
        )
    return app


def app_update(*, actor: Actor, app: App, name: str) -> App:
    """Rename an app (its settings that keys may change); sharing is the console's alone."""
    return hierarchy_rename(actor=actor, obj=app, name=name)


def app_publish(*, actor: Actor, app: App, bundle: IO[bytes]) -> AppVersion:
    """Store the bundle a seekable binary file holds, once checked, as the app's next version."""
    bundle.seek(0)
    checked = check_bundle(bundle)
    with transaction.atomic():
        # Lock the app row so two publishes cannot take the same version number.
        App.objects.select_for_update().filter(pk=app.pk).first()
        last = app.versions.aggregate(last=Max("version"))["last"] or 0
        version = AppVersion(
            app=app,
            version=last + 1,
            size=checked.size,
            sha256=checked.sha256,
            files=checked.files,
            actor_label=actor.display,
            origin=actor.origin,
        )
        bundle.seek(0)
        version.bundle.save(f"{app.slug}-v{last + 1}.tar.gz", File(bundle), save=False)
        version.save()
        audit_record(
            actor=actor,
            organization=app.organization,
            action=AuditEventType.APP_PUBLISHED,
            target=app,
            detail={"version": version.version, "sha256": checked.sha256, "size": checked.size},
        )
    return version
