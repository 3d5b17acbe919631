"""The bare endpoint benchmarks compare the judging path with (core.bench)."""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import UserFactory


@pytest.mark.django_db
def test_the_bare_endpoint_is_not_routed_by_default():
    user = UserFactory()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    assert client.get("/api/bench/bare/").status_code == 404


@pytest.mark.django_db
@pytest.mark.urls("core.bench_urls")
def test_the_bare_endpoint_answers_a_token_user_with_one_query(django_assert_num_queries):
    user = UserFactory(username="floor")
    key = Token.objects.create(user=user).key
    client = APIClient()
    assert client.get("/bare/").status_code in (401, 403)
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    client.get("/bare/")  # the token is remembered after its first use
    with django_assert_num_queries(1):
        response = client.get("/bare/")
    assert response.status_code == 200
    assert response.json() == {"id": user.pk, "username": "floor"}


@pytest.mark.django_db
def test_prepared_statements_can_be_turned_off(settings, django_assert_num_queries):
    """core.db.fetchone prepares its statement on PostgreSQL, or with the setting off (a
    pooler that cannot keep prepared statements) runs it through Django's own cursor; the
    answer is the same, and it is counted like any statement."""
    from django.db import connection

    from core import db

    user = UserFactory(username="plain")
    for prepared in (True, False):
        settings.DB_PREPARED_STATEMENTS = prepared
        sql = f"SELECT username FROM auth_user WHERE id = %s -- prepared {prepared}"
        with django_assert_num_queries(1):
            row = db.fetchone(sql, [user.pk])
        assert row == ("plain",)
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
                    [f"%-- prepared {prepared}"],
                )
                assert cursor.fetchone()[0] == int(prepared)
