"""A student run's and an evaluation's rules hold at every door: the service, the CLI, the
API and the page refuse the same settings with the same words (issue 16, "one error
type"). The bounds are checked before anything is loaded or looked up."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from rest_framework.test import APIClient

from core.errors import AppError
from corpora.models import Corpus
from distillation.models import StudentEvaluation, StudentRun
from distillation.services.evaluations import evaluation_create
from distillation.services.runs import student_run_create

from .test_pages import run_form

pytestmark = pytest.mark.django_db

# (field, value, message, the CLI's flag)
RUN_RULES = [
    ("max_length", 5000, "Ensure this value is less than or equal to 4096.", "--max-length"),
    ("batch_size", 0, "Ensure this value is greater than or equal to 1.", "--batch-size"),
    ("epochs", 0, "Ensure this value is greater than or equal to 0.01.", "--epochs"),
    ("learning_rate", -1, "Ensure this value is greater than or equal to 0.0.", "--learning-rate"),
    ("save_every", 0, "Ensure this value is greater than or equal to 1.", "--save-every"),
]
EVALUATION_RULES = [
    (
        "max_new_tokens",
        5000,
        "Ensure this value is less than or equal to 4096.",
        "--max-new-tokens",
    ),
    ("top_p", 1.5, "Ensure this value is less than or equal to 1.0.", "--top-p"),
    ("max_heads", 0, "Ensure this value is greater than or equal to 1.", "--max-heads"),
    ("n_per_pair", 0, "Ensure this value is greater than or equal to 1.", "--n"),
]
SAMPLING = [
    ("temperature", 0.0, "Sampling needs a temperature > 0.", "--temperature"),
    ("top_p", 0.0, "Top p is a probability mass in (0, 1].", "--top-p"),
]
MODEL = "/no/such/model"  # never loaded: the bounds refuse first


@pytest.fixture
def corpus():
    return Corpus.objects.create(name="rules")


@pytest.fixture
def run(corpus):
    return StudentRun.objects.create(name="student", corpus=corpus, base_model=MODEL)


def _refused_by_command(*args) -> str:
    with pytest.raises(CommandError) as refused:
        call_command(*args, stdout=io.StringIO(), stderr=io.StringIO())
    return str(refused.value)


@pytest.fixture
def api(researcher):
    client = APIClient()
    client.force_authenticate(researcher)
    return client


# --- Runs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "message", "flag"), RUN_RULES, ids=[r[0] for r in RUN_RULES]
)
def test_a_run_is_refused_alike_at_every_door(
    corpus, api, researcher_client, field, value, message, flag
):
    with pytest.raises(AppError) as refused:
        student_run_create(name="s", corpus=corpus, base_model=MODEL, **{field: value})
    assert (str(refused.value), refused.value.field) == (message, field)

    cli = ("train_student", "--name=s", f"--corpus={corpus.name}", f"--base-model={MODEL}")
    assert _refused_by_command(*cli, f"{flag}={value}") == message

    body = {"name": "s", "corpus": corpus.pk, "base_model": MODEL, field: value}
    response = api.post("/api/students/", body, format="json")
    assert response.status_code == 400 and response.json()[field] == [message]

    form = run_form(corpus=corpus, base_model=MODEL, **{field: str(value)})
    page = researcher_client.post(reverse("distillation:run_list"), form)
    assert page.context["form"].errors[field] == [message]
    assert not StudentRun.objects.exists()


def test_an_unknown_device_is_refused_in_the_same_words(corpus, api, researcher_client):
    message = "Select a valid choice. tpu is not one of the available choices."
    with pytest.raises(AppError) as refused:
        student_run_create(name="s", corpus=corpus, base_model=MODEL, device="tpu")
    assert (str(refused.value), refused.value.field) == (message, "device")
    body = {"name": "s", "corpus": corpus.pk, "base_model": MODEL, "device": "tpu"}
    assert api.post("/api/students/", body, format="json").json()["device"] == [message]
    form = run_form(corpus=corpus, base_model=MODEL, device="tpu")
    page = researcher_client.post(reverse("distillation:run_list"), form)
    assert page.context["form"].errors["device"] == [message]


# --- Evaluations --------------------------------------------------------------------


def _evaluation_form(**overrides) -> dict:
    data = {
        "heads_from": "list",
        "heads_split": "test",
        "heads": "PersonX paints a fence",
        "max_heads": "3",
        "decoding": "greedy",
        "n_per_pair": "1",
        "num_beams": "5",
        "max_new_tokens": "6",
        "temperature": "1.0",
        "top_p": "0.9",
        "seed": "0",
    }
    return {**data, **{k: str(v) for k, v in overrides.items()}}


def _evaluation_refused_alike(run, api, client, field, value, message, flag, **settings):
    with pytest.raises(AppError) as refused:
        evaluation_create(run=run, heads=["PersonX paints a fence"], **settings, **{field: value})
    assert (str(refused.value), refused.value.field) == (message, field)

    cli = ["evaluate_student", f"--run={run.name}", f"{flag}={value}"]
    cli += [f"--{k}={v}" for k, v in settings.items()]
    assert _refused_by_command(*cli) == message

    body = {"heads": ["PersonX paints a fence"], **settings, field: value}
    response = api.post(f"/api/students/{run.pk}/evaluations/", body, format="json")
    assert response.status_code == 400 and response.json()[field] == [message]

    page = client.post(
        reverse("distillation:evaluation_create", args=[run.pk]),
        _evaluation_form(**settings, **{field: value}),
    )
    assert page.context["evaluation_form"].errors[field] == [message]
    assert not StudentEvaluation.objects.exists()


@pytest.mark.parametrize(
    ("field", "value", "message", "flag"), EVALUATION_RULES, ids=[r[0] for r in EVALUATION_RULES]
)
def test_an_evaluation_is_refused_alike_at_every_door(
    run, api, researcher_client, field, value, message, flag
):
    _evaluation_refused_alike(run, api, researcher_client, field, value, message, flag)


@pytest.mark.parametrize(
    ("field", "value", "message", "flag"), SAMPLING, ids=[r[0] for r in SAMPLING]
)
def test_sampling_needs_a_temperature_and_some_mass_at_every_door(
    run, api, researcher_client, field, value, message, flag
):
    _evaluation_refused_alike(
        run, api, researcher_client, field, value, message, flag, decoding="sample"
    )
