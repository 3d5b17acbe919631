"""Learning campaigns started from the critic: near a preset's line (each relation around
its own threshold) or where the critic and the crowd disagree; the same service behind the
dashboard, the API and `manage.py learn_campaign`; the learning curve tells them apart."""

import io
import re

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from rest_framework.test import APIClient

from annotation.errors import AnnotationError
from annotation.models import Campaign, Item
from annotation.services.aggregation import campaign_aggregate
from annotation.services.judgments import judgment_submit
from annotation.services.leasing import assignment_next
from corpora.models import Triple
from critic.errors import CriticError
from critic.models import FilterPreset
from critic.services.learning import learning_campaign_create
from critic.services.presets import preset_save
from critic.services.scoring import corpus_rescore
from critic.services.training import critic_train

pytestmark = pytest.mark.django_db


@pytest.fixture
def scored(labelled_corpus):
    version = critic_train(corpus=labelled_corpus, queue_rescore=False)
    corpus_rescore(corpus=labelled_corpus)
    return labelled_corpus, version


def _relations(corpus) -> list[str]:
    """The corpus's two commonest relations."""
    from django.db.models import Count

    rows = (
        Triple.objects.filter(corpus=corpus)
        .values_list("relation__name")
        .annotate(n=Count("id"))
        .order_by("-n")
    )
    return [name for name, _ in rows[:2]]


@pytest.fixture
def preset(scored):
    """A preset whose line sits low for one relation and high for another."""
    corpus, version = scored
    scores = np.array(
        Triple.objects.filter(corpus=corpus).with_score(corpus).values_list("score", flat=True)
    )
    low, high = np.quantile(scores, [0.2, 0.8]).round(3).tolist()
    first, second = _relations(corpus)
    return preset_save(
        corpus=corpus,
        name="lines",
        version=version,
        threshold=float(np.median(scores).round(3)),
        relation_thresholds={first: low, second: high},
    )


def _picked(campaign) -> list[tuple[str, float]]:
    scores = dict(
        Triple.objects.filter(corpus=campaign.corpus)
        .with_score(campaign.corpus)
        .values_list("id", "score")
    )
    return [
        (relation, scores[triple])
        for relation, triple in Item.objects.filter(campaign=campaign, is_gold=False).values_list(
            "relation__name", "triple_id"
        )
    ]


def _gap_to_line(preset, rows) -> float:
    lines = preset.relation_thresholds
    return float(np.mean([abs(s - lines.get(r, preset.threshold)) for r, s in rows]))


def test_near_the_line_draws_around_the_presets_thresholds_per_relation(preset):
    corpus = preset.corpus
    campaign = learning_campaign_create(
        corpus=corpus,
        sampling=Campaign.Sampling.NEAR_LINE,
        preset=preset,
        name="near",
        size=60,
        gold_share=0.0,
        seed=5,
    )
    assert campaign.purpose == Campaign.Purpose.LEARNING
    assert campaign.sampling_params["relation_thresholds"] == preset.relation_thresholds
    assert campaign.sampling_params["preset"] == "lines"
    rows = _picked(campaign)
    everything = [
        (r, s)
        for r, s in Triple.objects.filter(corpus=corpus)
        .with_score(corpus)
        .values_list("relation__name", "score")
    ]
    # Closer to each relation's own line than the corpus is on average.
    assert _gap_to_line(preset, rows) < 0.6 * _gap_to_line(preset, everything)
    first, second = _relations(corpus)
    low = [s for r, s in rows if r == first]
    high = [s for r, s in rows if r == second]
    assert low and high and np.median(low) < np.median(high)


def test_near_the_line_needs_a_preset_of_the_scores_in_the_corpus(preset, scored):
    corpus, _ = scored
    with pytest.raises(CriticError, match="filter preset"):
        learning_campaign_create(corpus=corpus, sampling="near_line", name="n", size=5)
    with pytest.raises(CriticError, match="samples near_line or disagreement"):
        learning_campaign_create(corpus=corpus, sampling="uniform", name="n", size=5)
    v2 = critic_train(corpus=corpus, queue_rescore=False)
    stale = FilterPreset.objects.create(corpus=corpus, name="old", version=v2, threshold=0.5)
    with pytest.raises(CriticError, match="holds scores of v1"):
        learning_campaign_create(
            corpus=corpus, sampling="near_line", preset=stale, name="n", size=5
        )
    assert not Campaign.objects.filter(name="n").exists()


def test_disagreement_asks_first_about_labels_the_critic_is_surest_are_wrong(scored):
    corpus, _ = scored
    campaign = learning_campaign_create(
        corpus=corpus, sampling="disagreement", name="second look", size=30, gold_share=0.0
    )
    from critic.labels import corpus_labels

    labels = corpus_labels(corpus_id=corpus.pk)
    label_of = dict(zip(labels.triple_ids.tolist(), labels.labels.tolist(), strict=True))
    score_of = dict(
        Triple.objects.filter(corpus=corpus).with_score(corpus).values_list("id", "score")
    )
    gaps = [abs(label_of[t] - score_of[t]) for t in label_of]
    order = Item.objects.filter(campaign=campaign).order_by("position")
    picked = [abs(label_of[t] - score_of[t]) for t in order.values_list("triple_id", flat=True)]
    assert picked == sorted(picked, reverse=True)
    assert picked[0] == pytest.approx(max(gaps))
    assert min(picked) >= sorted(gaps, reverse=True)[29] - 1e-9


# --- The three doors ---------------------------------------------------------------


def test_the_dashboard_creates_a_learning_campaign(client, researcher, preset):
    corpus = preset.corpus
    client.force_login(researcher)
    html = client.get(reverse("critic:dashboard", args=[corpus.pk])).content.decode()
    form = html.split('id="learn"', 1)[1].split("</form>", 1)[0]
    assert 'name="sampling"' in form and 'value="near_line"' in form and ">lines<" in form
    response = client.post(
        reverse("critic:learn", args=[corpus.pk]),
        {
            "sampling": "near_line",
            "preset": preset.pk,
            "name": "from the page",
            "size": 20,
            "judgments_per_item": 2,
        },
    )
    campaign = Campaign.objects.get(name="from the page")
    assert response.status_code == 302
    assert response["Location"] == reverse("annotation:campaign_detail", args=[campaign.pk])
    assert campaign.sampling == "near_line" and campaign.judgments_per_item == 2
    assert campaign.sampling_params["threshold"] == preset.threshold
    detail = client.get(response["Location"]).content.decode()
    line = detail.split('id="sampling-line"', 1)[1].split("</span>", 1)[0]
    assert f"around {preset.threshold}" in line and "preset lines" in line
    # Refused (no preset): the dashboard says why, and nothing is created.
    response = client.post(
        reverse("critic:learn", args=[corpus.pk]),
        {"sampling": "near_line", "name": "no line", "size": 20, "judgments_per_item": 3},
        follow=True,
    )
    assert "filter preset" in response.content.decode()
    assert not Campaign.objects.filter(name="no line").exists()


def test_the_api_creates_a_learning_campaign(researcher, preset):
    corpus = preset.corpus
    api = APIClient()
    api.force_authenticate(researcher)
    url = f"/api/critic/{corpus.pk}/learn/"
    answer = api.post(
        url, {"sampling": "near_line", "preset": "lines", "name": "api", "size": 20}, format="json"
    )
    assert answer.status_code == 201, answer.data
    assert answer.data["sampling"] == "near_line"
    assert answer.data["sampling_params"]["relation_thresholds"] == preset.relation_thresholds
    assert answer.data["item_count"] == Campaign.objects.get(name="api").item_count > 0
    detail = api.get(f"/api/campaigns/{answer.data['id']}/").data
    assert detail["sampling_params"]["preset"] == "lines"
    refused = api.post(url, {"sampling": "near_line", "name": "x", "size": 5}, format="json")
    assert refused.status_code == 400 and refused.data["field"] == "preset"
    unknown = api.post(
        url, {"sampling": "near_line", "preset": "nope", "name": "x", "size": 5}, format="json"
    )
    assert unknown.status_code == 400 and "preset" in unknown.data
    other = api.post(url, {"sampling": "disagreement", "name": "api d", "size": 5}, format="json")
    assert other.status_code == 201 and other.data["sampling"] == "disagreement"


def test_the_command_line_creates_a_learning_campaign(preset):
    corpus = preset.corpus
    out = io.StringIO()
    call_command(
        "learn_campaign",
        "--corpus",
        corpus.name,
        "--sampling",
        "near_line",
        "--preset",
        "lines",
        "--name",
        "cli",
        "--size",
        "20",
        "--seed",
        "3",
        stdout=out,
    )
    campaign = Campaign.objects.get(name="cli")
    assert campaign.sampling == "near_line" and campaign.seed == 3
    assert f"around {preset.threshold}" in out.getvalue()
    with pytest.raises(CommandError, match="filter preset"):
        call_command(
            "learn_campaign", "--corpus", corpus.name, "--sampling", "near_line", "--name", "x",
            "--size", "5",
        )  # fmt: skip
    with pytest.raises(CommandError, match="No preset 'nope'.*presets: lines"):
        call_command(
            "learn_campaign", "--corpus", corpus.name, "--sampling", "near_line", "--preset",
            "nope", "--name", "x", "--size", "5",
        )  # fmt: skip


def test_the_annotation_doors_refuse_near_the_line_without_a_threshold(preset, researcher):
    corpus = preset.corpus
    api = APIClient()
    api.force_authenticate(researcher)
    answer = api.post(
        "/api/campaigns/",
        {"corpus": corpus.name, "name": "plain", "size": 10, "sampling": "near_line"},
        format="json",
    )
    assert answer.status_code == 400 and "draws around a threshold" in answer.data["detail"]
    with pytest.raises(CommandError, match="draws around a threshold"):
        call_command(
            "create_campaign", "--corpus", corpus.name, "--name", "plain", "--size", "10",
            "--sampling", "near_line",
        )  # fmt: skip
    with pytest.raises(AnnotationError):
        from annotation.services.campaigns import campaign_create

        campaign_create(corpus=corpus, name="plain", size=10, sampling="near_line")


# --- The learning curve --------------------------------------------------------------


def _judge(campaign, annotator) -> None:
    """The annotator calls every item acceptable (always/often and sometimes in turn)."""
    from annotation.services.membership import member_add

    member_add(campaign=campaign, annotator=annotator)
    turn = 0
    while assignment := assignment_next(campaign=campaign, annotator=annotator):
        judgment_submit(assignment_id=assignment.pk, annotator=annotator, value=2 - turn % 2)
        turn += 1
    campaign_aggregate(campaign=campaign)


def test_the_learning_curve_marks_the_versions_that_learned_near_the_line(
    client, researcher, annotator, preset
):
    corpus = preset.corpus
    campaign = learning_campaign_create(
        corpus=corpus,
        sampling="near_line",
        preset=preset,
        name="near",
        size=25,
        judgments_per_item=1,
        gold_share=0.0,
    )
    _judge(campaign, annotator)
    second = critic_train(corpus=corpus, queue_rescore=False)
    client.force_login(researcher)
    html = client.get(reverse("critic:dashboard", args=[corpus.pk])).content.decode()
    svg = html.split('id="learning-curve"', 1)[1].split("</svg>", 1)[0]
    marked = dict(re.findall(r'data-version="(\d+)" data-sampling="([a-z_]+)"', svg))
    assert marked == {"1": "uniform", str(second.number): "near_line"}
    assert "new labels by sampling: near_line 25" in svg
    legend = html.split('id="sampling-legend"', 1)[1].split("</ul>", 1)[0]
    assert "near a filter preset&#x27;s threshold" in legend and "uniform" in legend
    table = html.split('id="labels-by-sampling"', 1)[1].split("</table>", 1)[0]
    row = table.split(f"<td>v{second.number}</td>", 1)[1].split("</tr>", 1)[0]
    assert "near a filter preset&#x27;s threshold 25" in row
