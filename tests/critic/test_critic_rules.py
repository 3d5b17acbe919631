"""The critic's rules hold at every door it has: its settings (page, CLI, service) and its
filter presets (page, API, service) refuse the same input with the same words (issue 16,
"one error type"). The settings have no API that writes them, the presets no command."""

import io

import pytest
from django.contrib.messages import get_messages
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from rest_framework.test import APIClient

from core.errors import AppError
from corpora.models import Corpus
from critic.models import CriticConfig, CriticVersion, FilterPreset
from critic.services.config import critic_config_get, critic_config_update
from critic.services.presets import preset_save

pytestmark = pytest.mark.django_db

LONG_ENCODER = "m" * 301
TOO_LONG = "Ensure this value has at most 300 characters (it has 301)."
AT_LEAST_ONE = "Ensure this value is greater than or equal to 1."
UNKNOWN_TIER = "Select a valid choice. huge is not one of the available choices."
ABOVE_ONE = "Ensure this value is less than or equal to 1.0."


@pytest.fixture
def corpus():
    return Corpus.objects.create(name="rules")


def _page_messages(response) -> str:
    return " ".join(str(m) for m in get_messages(response.wsgi_request))


# --- Settings: tier, encoder, retraining --------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("encoder", LONG_ENCODER, TOO_LONG),
        ("retrain_every", 0, AT_LEAST_ONE),
        ("tier", "huge", UNKNOWN_TIER),
    ],
)
def test_the_settings_service_refuses(corpus, field, value, message):
    with pytest.raises(AppError) as refused:
        critic_config_update(corpus=corpus, **{field: value})
    assert (str(refused.value), refused.value.field) == (message, field)
    assert critic_config_get(corpus=corpus).encoder != LONG_ENCODER


def test_the_train_command_refuses_the_encoder_the_page_refuses(corpus, researcher, client):
    with pytest.raises(CommandError) as refused:
        call_command(
            "train_critic",
            "--corpus",
            corpus.name,
            "--encoder",
            LONG_ENCODER,
            stdout=io.StringIO(),
            stderr=io.StringIO(),
        )
    assert str(refused.value) == TOO_LONG

    client.force_login(researcher)
    form = {"tier": "fast", "encoder": LONG_ENCODER, "auto_retrain": "on", "retrain_every": 5}
    response = client.post(reverse("critic:config", args=[corpus.pk]), form)
    assert response.status_code == 302 and TOO_LONG in _page_messages(response)
    assert critic_config_get(corpus=corpus).encoder != LONG_ENCODER


def test_the_page_refuses_what_the_service_refuses(corpus, researcher, client):
    client.force_login(researcher)
    for field, value, message in (
        ("retrain_every", 0, AT_LEAST_ONE),
        ("tier", "huge", UNKNOWN_TIER),
    ):
        form = {"tier": "fast", "encoder": "e", "retrain_every": 5, field: value}
        response = client.post(reverse("critic:config", args=[corpus.pk]), form)
        assert message in _page_messages(response)
    assert CriticConfig.objects.get(corpus=corpus).encoder != "e"


# --- Filter presets: threshold(s) in [0, 1] -----------------------------------------


def test_the_preset_service_refuses_a_threshold_above_one(corpus):
    version = CriticVersion(corpus=corpus, number=1)
    with pytest.raises(AppError) as refused:
        preset_save(corpus=corpus, name="p", version=version, threshold=1.5)
    assert (str(refused.value), refused.value.field) == (ABOVE_ONE, "threshold")
    with pytest.raises(AppError) as refused:
        preset_save(
            corpus=corpus,
            name="p",
            version=version,
            threshold=0.5,
            relation_thresholds={"xNeed": 2.0},
        )
    assert (str(refused.value), refused.value.field) == (ABOVE_ONE, "relation_thresholds")
    assert not FilterPreset.objects.exists()


def test_the_preset_api_and_page_refuse_it_in_the_same_words(corpus, researcher, client):
    api = APIClient()
    api.force_authenticate(researcher)
    body = {"name": "p", "version": 1, "threshold": 1.5}
    response = api.post(f"/api/critic/{corpus.pk}/presets/", body, format="json")
    assert response.status_code == 400 and response.json()["threshold"] == [ABOVE_ONE]

    client.force_login(researcher)
    page = client.post(reverse("critic:preset_save", args=[corpus.pk]), body)
    assert ABOVE_ONE in _page_messages(page)
    assert not FilterPreset.objects.exists()
