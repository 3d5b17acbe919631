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
