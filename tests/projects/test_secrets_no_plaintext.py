"""No plaintext secret value, nor data key, in any table, log line or SQL statement."""

from __future__ import annotations

import json
import logging

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.access import Actor
from apikeys.models import KeyKind
from apikeys.permissions import ALL
from apikeys.services import api_key_create
from projects import crypto
from projects.models import EnvironmentKey, SecretVersion
from projects.secrets import encryption_key_rotate, secret_restore, secret_set
from tests.projects.secret_helpers import environment_in, every_stored_value

pytestmark = pytest.mark.django_db

# Distinctive values, so that finding one anywhere can only mean a leak.
WEB_VALUE = "web-plaintext-3f9a1c7e"
API_VALUE = "api-plaintext-b2d84e60"
SERVICE_VALUE = "service-plaintext-71c0aa95"
REFUSED_VALUE = "refused-plaintext-5e6f0d21"
VALUES = (WEB_VALUE, API_VALUE, SERVICE_VALUE, REFUSED_VALUE)


@pytest.fixture
def everything_logged(caplog):
    """Capture every log record at DEBUG, SQL statements with their parameters included."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django")
    with CaptureQueriesContext(connection) as queries:
        yield caplog, queries


def test_no_table_log_or_statement_holds_a_value_or_a_data_key(org, everything_logged):
    """Values set from the console, the API and services, then read, restored, rotated and
    refused, appear in no table, no log line and no SQL statement; nor does a raw data key."""
    caplog, queries = everything_logged
    environment = environment_in(org)
    console = Client()
    console.force_login(org.admin)
    list_url = reverse("secret_list", kwargs={"org": "acme", "pk": environment.pk})
    token = api_key_create(
        actor=Actor(user=org.owner),
        organization=org.organization,
        kind=KeyKind.ORGANIZATION,
        permissions=sorted(ALL),
    )[1]
    api = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    base = f"/api/v1/environments/{environment.pk}"

    assert console.post(list_url, {"name": "WEB", "value": WEB_VALUE}).status_code == 302
    assert console.post(list_url, {"name": "1BAD", "value": REFUSED_VALUE}).status_code == 422
    put = api.put(
        f"{base}/secrets/API", json.dumps({"value": API_VALUE}), content_type="application/json"
    )
    assert put.status_code == 201
    refused = api.put(
        f"{base}/secrets/BAD-NAME",
        json.dumps({"value": REFUSED_VALUE}),
        content_type="application/json",
    )
    assert refused.status_code == 422
    secret_set(
        actor=Actor(user=org.owner), environment=environment, name="SVC", value=SERVICE_VALUE
    )
    secret_set(actor=Actor(user=org.owner), environment=environment, name="SVC", value="other")
    secret_restore(
        actor=Actor(user=org.owner),
        version=SecretVersion.objects.get(secret__name="SVC", version=1),
    )
    assert api.get(f"{base}/secrets/API").json()["value"] == API_VALUE
    assert api.post(f"{base}/encryption-key/rotate").status_code == 200
    encryption_key_rotate(actor=Actor(user=org.owner), environment=environment)
    for path in (list_url, list_url + "WEB/", reverse("audit_log", kwargs={"org": "acme"})):
        assert console.get(path).status_code == 200

    stored = every_stored_value()
    logged = [record.getMessage() for record in caplog.records] + [caplog.text]
    sql = [query["sql"] for query in queries.captured_queries]
    assert any(record.name == "django.db.backends" for record in caplog.records)
    assert any("INSERT" in s and "projects_secretversion" in s for s in sql)
    for value in VALUES:
        for where, texts in (("the database", stored), ("the logs", logged), ("SQL", sql)):
            assert not any(value in text for text in texts), f"{value} is in {where}"
    raw_key = crypto.master().decrypt(EnvironmentKey.objects.get().encrypted_key.encode()).decode()
    assert not any(raw_key in text for text in stored)
    assert not any(raw_key in text for text in logged + sql)


def test_the_search_would_find_a_stored_plaintext(org):
    """The table dump does see secret rows: a value written as a ciphertext would be caught."""
    environment = environment_in(org)
    secret_set(actor=Actor(user=org.owner), environment=environment, name="A", value="x")
    SecretVersion.objects.update(ciphertext=WEB_VALUE)

    assert any(WEB_VALUE in value for value in every_stored_value())
