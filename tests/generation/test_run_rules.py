"""A run's rules hold at every door: the page, the API, the CLI and the service refuse
the same settings with the same words (issue 16: `generate --n 1000` got through)."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from rest_framework.test import APIClient

from core.errors import AppError
from generation.models import FewShotPool, GenerationRun
from generation.services.runs import run_create
from generation.services.teachers import teacher_create

pytestmark = pytest.mark.django_db

TOO_MANY = "Ensure this value is less than or equal to 100."


@pytest.fixture
def teacher():
    return teacher_create(name="offline", base_url="http://127.0.0.1:9/v1", model="m")


@pytest.fixture
def pool():
    return FewShotPool.objects.create(name="refs")


def test_the_service_refuses_too_many_tails_per_pair(teacher, pool):
    with pytest.raises(AppError) as refused:
        run_create(
            teacher=teacher,
            pool=pool,
            corpus_name="c",
            relations=["xNeed"],
            heads=["PersonX paints a fence"],
            n_per_pair=1000,
        )
    assert str(refused.value) == TOO_MANY and refused.value.field == "n_per_pair"
    assert not GenerationRun.objects.exists()


def test_the_cli_refuses_what_the_page_and_api_refuse(teacher, pool, tmp_path, researcher, client):
    heads = tmp_path / "heads.txt"
    heads.write_text("PersonX paints a fence\n", encoding="utf-8")
    args = ["--teacher", "offline", "--corpus", "c", "--pool", "refs", "--relations", "xNeed"]
    with pytest.raises(CommandError, match=TOO_MANY):
        call_command(
            "generate",
            *args,
            "--heads-file",
            str(heads),
            "--n",
            "1000",
            stdout=io.StringIO(),
            stderr=io.StringIO(),
        )

    api = APIClient()
    api.force_authenticate(researcher)
    body = {
        "teacher": teacher.pk,
        "pool": pool.pk,
        "corpus": "c",
        "relations": ["xNeed"],
        "heads": ["PersonX paints a fence"],
        "n_per_pair": 1000,
    }
    response = api.post("/api/runs/", body, format="json")
    assert response.status_code == 400 and response.json()["n_per_pair"] == [TOO_MANY]

    client.force_login(researcher)
    form = {
        "teacher": teacher.pk,
        "pool": pool.pk,
        "corpus_name": "c",
        "relations": ["xNeed"],
        "heads_from": "list",
        "heads": "PersonX paints a fence",
        "n_per_pair": 1000,
        "k_examples": 2,
        "seed": 0,
    }
    page = client.post(reverse("generation:run_create"), form)
    assert page.context["form"].errors["n_per_pair"] == [TOO_MANY]
    assert not GenerationRun.objects.exists()
