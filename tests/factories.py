"""factory_boy factories for the models tests need."""

from __future__ import annotations

import factory

from accounts.models import Membership, Organization, Role, ServiceAccount, Team, User
from projects.models import App, Environment, Project, Target

PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@example.test")
    display_name = factory.Sequence(lambda n: f"Person {n}")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Org {n}")
    slug = factory.Sequence(lambda n: f"org-{n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    role = Role.MEMBER


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Team {n}")


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    team = factory.SubFactory(TeamFactory)
    organization = factory.SelfAttribute("team.organization")
    name = factory.Sequence(lambda n: f"Project {n}")


class TargetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Target

    project = factory.SubFactory(ProjectFactory)
    name = factory.Sequence(lambda n: f"target-{n}")


class EnvironmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Environment

    target = factory.SubFactory(TargetFactory)
    name = factory.Sequence(lambda n: f"env-{n}")


class AppFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = App

    project = factory.SubFactory(ProjectFactory)
    organization = factory.SelfAttribute("project.organization")
    name = factory.Sequence(lambda n: f"App {n}")
    slug = factory.Sequence(lambda n: f"app-{n}")


class ServiceAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ServiceAccount

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"bot-{n}")
    identifier = factory.LazyAttribute(
        lambda o: f"{o.name}@{o.organization.slug}.serviceaccounts.keyportal"
    )
