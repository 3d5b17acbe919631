"""A campaign's rules hold at every door: the service, the CLI, the API and the page refuse
the same settings with the same words (issue 16, "one error type")."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from rest_framework.test import APIClient

from annotation.errors import AnnotationError
from annotation.models import Campaign
from annotation.services.campaigns import campaign_create, campaign_grow

from .conftest import make_corpus

pytestmark = pytest.mark.django_db

VALID = {
    "name": "rules",
    "size": 5,
    "sampling": "uniform",
    "judgments_per_item": 3,
    "gold_share": 0.1,
    "gold_threshold": 0.7,
    "gold_min_answers": 5,
    "lease_seconds": 600,
    "seed": 1,
}
# (field, value, message, the CLI's flag or None where the command has no such option)
RULES = [
    ("size", 20_000_000, "Ensure this value is less than or equal to 10000000.", "--size"),
    ("judgments_per_item", 50, "Ensure this value is less than or equal to 20.", "--k"),
    ("gold_share", 0.9, "Ensure this value is less than or equal to 0.5.", "--gold-share"),
    ("lease_seconds", 5, "Ensure this value is greater than or equal to 10.", "--lease-seconds"),
    ("seed", -1, "Ensure this value is greater than or equal to 0.", "--seed"),
    ("gold_threshold", 1.5, "Ensure this value is less than or equal to 1.0.", None),
    ("gold_min_answers", 1001, "Ensure this value is less than or equal to 1000.", None),
    (
        "sampling",
        "bogus",
        "Select a valid choice. bogus is not one of the available choices.",
        None,
    ),
    ("name", "x" * 101, "Ensure this value has at most 100 characters (it has 101).", "--name"),
    # Crowd studies (issue 17): sessions, training, honesty checks.
    (
        "items_per_session",
        20_000,
        "Ensure this value is less than or equal to 10000.",
        "--items-per-session",
    ),
    ("training_size", 51, "Ensure this value is less than or equal to 50.", "--training-size"),
    (
        "qualification_threshold",
        1.5,
        "Ensure this value is less than or equal to 1.0.",
        "--qualification-threshold",
    ),
    ("training_tries", 0, "Ensure this value is greater than or equal to 1.", "--training-tries"),
    (
        "straight_line_run",
        4,
        "Ensure this value is greater than or equal to 5.",
        "--straight-line-run",
    ),
    ("speed_floor", 2.0, "Ensure this value is less than or equal to 1.0.", "--speed-floor"),
]
IDS = [rule[0] for rule in RULES]


@pytest.fixture
def corpus():
    return make_corpus(40)


@pytest.mark.parametrize(("field", "value", "message", "flag"), RULES, ids=IDS)
def test_the_service_refuses(corpus, field, value, message, flag):
    with pytest.raises(AnnotationError) as refused:
        campaign_create(corpus=corpus, **{**VALID, field: value})
    assert (str(refused.value), refused.value.field) == (message, field)
    assert not Campaign.objects.exists()


@pytest.mark.parametrize(("field", "value", "message", "flag"), RULES, ids=IDS)
def test_the_cli_refuses(corpus, field, value, message, flag):
    if flag is None:
        pytest.skip("create_campaign has no option for it")
    args = {"--name": "rules", "--size": "5", "--seed": "1", flag: str(value)}
    with pytest.raises(CommandError) as refused:
        call_command(
            "create_campaign",
            f"--corpus={corpus.name}",
            *(f"{k}={v}" for k, v in args.items()),
            stdout=io.StringIO(),
            stderr=io.StringIO(),
        )
    assert str(refused.value) == message
    assert not Campaign.objects.exists()


@pytest.mark.parametrize(("field", "value", "message", "flag"), RULES, ids=IDS)
def test_the_api_refuses(corpus, researcher, field, value, message, flag):
    api = APIClient()
    api.force_authenticate(researcher)
    body = {**VALID, "corpus": corpus.name, field: value}
    response = api.post("/api/campaigns/", body, format="json")
    assert response.status_code == 400
    assert response.json()[field] == [message]
    assert not Campaign.objects.exists()


@pytest.mark.parametrize(("field", "value", "message", "flag"), RULES, ids=IDS)
def test_the_page_refuses(corpus, researcher_client, field, value, message, flag):
    form = {**VALID, "corpus": corpus.pk, field: value}
    response = researcher_client.post(reverse("annotation:campaign_create"), form)
    assert response.status_code == 200
    assert response.context["form"].errors[field] == [message]
    assert not Campaign.objects.exists()


def test_growing_has_the_same_bound(corpus, researcher_client):
    campaign = campaign_create(corpus=corpus, **VALID)
    with pytest.raises(AnnotationError) as refused:
        campaign_grow(campaign=campaign, size=20_000_000)
    assert str(refused.value) == "Ensure this value is less than or equal to 10000000."
    assert refused.value.field == "size"


CROWD = {
    "items_per_session": 30,
    "training_size": 4,
    "qualification_threshold": 0.75,
    "training_tries": 3,
    "straight_line_run": 12,
    "speed_floor": 0.3,
}


def _crowd_settings(campaign) -> dict:
    return {field: getattr(campaign, field) for field in CROWD}


def test_crowd_settings_are_kept_at_every_door(corpus, researcher, researcher_client):
    by_service = campaign_create(corpus=corpus, **{**VALID, "name": "service"}, **CROWD)
    assert _crowd_settings(by_service) == CROWD

    flags = [f"--{field.replace('_', '-')}={value}" for field, value in CROWD.items()]
    call_command(
        "create_campaign",
        f"--corpus={corpus.name}",
        "--name=cli",
        "--size=5",
        *flags,
        stdout=io.StringIO(),
    )
    assert _crowd_settings(Campaign.objects.get(name="cli")) == CROWD

    api = APIClient()
    api.force_authenticate(researcher)
    body = {**VALID, **CROWD, "corpus": corpus.name, "name": "api"}
    response = api.post("/api/campaigns/", body, format="json")
    assert response.status_code == 201, response.content
    assert {f: response.json()[f] for f in CROWD} == CROWD
    assert _crowd_settings(Campaign.objects.get(name="api")) == CROWD

    form = {**VALID, **CROWD, "corpus": corpus.pk, "name": "page"}
    response = researcher_client.post(reverse("annotation:campaign_create"), form)
    assert response.status_code == 302
    page = Campaign.objects.get(name="page")
    assert _crowd_settings(page) == CROWD
    shown = researcher_client.get(reverse("annotation:campaign_detail", args=[page.pk]))
    text = shown.content.decode()
    assert "training 4 items, pass at 0.75, 3 rounds" in text
    assert "pause after 12 identical answers in a row" in text
    assert "30 items per session" in text


def test_training_needs_gold_at_every_door(corpus, researcher_client):
    with pytest.raises(AnnotationError) as refused:
        campaign_create(corpus=corpus, **{**VALID, "gold_share": 0.0, "training_size": 4})
    assert refused.value.field == "training_size"
    assert "set a gold share above 0" in str(refused.value)
    form = {**VALID, "corpus": corpus.pk, "gold_share": 0.0, "training_size": 4}
    response = researcher_client.post(reverse("annotation:campaign_create"), form)
    assert "set a gold share above 0" in response.context["form"].errors["training_size"][0]
    assert not Campaign.objects.exists()


def test_training_gets_a_gold_pool_of_its_own(corpus):
    settings = {**VALID, "size": 40}
    campaign = campaign_create(corpus=corpus, **settings, training_size=10, training_tries=2)
    assert campaign.gold_count > 20  # 20 without training
