"""The OpenAPI schema and its docs page are for signed-in researchers only."""

import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

SCHEMA, DOCS = "/api/schema/", "/api/docs/"


def test_anonymous_users_get_no_schema_and_are_sent_to_login_from_the_docs(client):
    assert client.get(SCHEMA).status_code in (401, 403)
    docs = client.get(DOCS)
    assert docs.status_code == 302
    assert docs["Location"] == f"{reverse('login')}?next={DOCS}"


def test_annotators_get_403_on_the_schema_and_the_docs(annotator_client, annotator):
    assert annotator_client.get(SCHEMA).status_code == 403
    assert annotator_client.get(DOCS).status_code == 403
    token = APIClient()
    token.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=annotator).key}")
    assert token.get(SCHEMA).status_code == 403


def test_researchers_read_the_schema_and_the_docs(researcher_client, researcher):
    schema = researcher_client.get(SCHEMA)
    assert schema.status_code == 200
    assert b"openapi:" in schema.content and b"/api/jobs/{id}/" in schema.content
    docs = researcher_client.get(DOCS)
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content and SCHEMA.encode() in docs.content
    token = APIClient()  # a script with a researcher's token
    token.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=researcher).key}")
    assert token.get(SCHEMA, HTTP_ACCEPT="application/vnd.oai.openapi+json").status_code == 200
