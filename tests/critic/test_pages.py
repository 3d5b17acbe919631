import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from critic import selectors, services
from critic.models import FilterPreset
from generation.models import Triple
from jobs.models import Job
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def scored(labelled_corpus):
    version = services.critic_train(corpus=labelled_corpus, queue_rescore=False)
    services.corpus_rescore(corpus=labelled_corpus)
    return labelled_corpus, version


def test_dashboard_shows_versions_curves_and_the_threshold_panel(client, researcher, scored):
    corpus, version = scored
    client.force_login(researcher)
    page = client.get(reverse("critic:dashboard", args=[corpus.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="threshold-slider"' in html and "polyline" in html
    assert "v1" in html and "rec_80" in html


def test_threshold_fragment_counts_like_the_database(client, researcher, scored):
    corpus, version = scored
    client.force_login(researcher)
    response = client.get(
        reverse("critic:threshold", args=[corpus.pk]),
        {"version": version.number, "threshold": "0.6"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html
    kept = Triple.objects.filter(corpus=corpus).with_score(corpus).filter(score__gte=0.6).count()
    assert f"{kept:,}" in html


def test_target_precision_and_saving_a_preset(client, researcher, scored):
    corpus, version = scored
    client.force_login(researcher)
    response = client.get(
        reverse("critic:target", args=[corpus.pk]),
        {"version": version.number, "target": "0.8"},
    )
    assert response.status_code == 200
    overall, _ = selectors.threshold_for_precision(version=version, target=0.8)
    assert str(overall) in response.content.decode()
    client.post(
        reverse("critic:preset_save", args=[corpus.pk]),
        {"version": version.number, "name": "precise", "threshold": overall},
    )
    preset = FilterPreset.objects.get(corpus=corpus, name="precise")
    assert preset.threshold == overall
    export = client.post(
        reverse("critic:preset_export", args=[corpus.pk, preset.pk]), {"format": "csv"}
    )
    job = Job.objects.get(kind="corpus_export")
    assert export.url == reverse("jobs:job_detail", args=[job.pk])
    assert job.params["preset_id"] == preset.pk


def test_annotators_cannot_see_the_critic(client, scored):
    corpus, _ = scored
    annotator = UserFactory(role="annotator")
    client.force_login(annotator)
    assert client.get(reverse("critic:dashboard", args=[corpus.pk])).status_code == 403
    api = APIClient()
    api.force_authenticate(annotator)
    assert api.get(f"/api/critic/{corpus.pk}/").status_code == 403


def test_api_threshold_target_and_presets(researcher, scored):
    corpus, version = scored
    api = APIClient()
    api.force_authenticate(researcher)
    detail = api.get(f"/api/critic/{corpus.pk}/").json()
    assert detail["versions"][0]["number"] == 1 and detail["scored_by"] == 1
    report = api.get(f"/api/critic/{corpus.pk}/threshold/", {"threshold": 0.5}).json()
    assert (
        report["kept"]
        == Triple.objects.filter(corpus=corpus).with_score(corpus).filter(score__gte=0.5).count()
    )
    target = api.get(f"/api/critic/{corpus.pk}/target-precision/", {"target": 0.8}).json()
    assert target["threshold"] is not None
    created = api.post(
        f"/api/critic/{corpus.pk}/presets/",
        {"name": "api", "version": 1, "threshold": target["threshold"]},
        format="json",
    )
    assert created.status_code == 201
    bad = api.post(
        f"/api/critic/{corpus.pk}/presets/",
        {"name": "bad", "version": 1, "threshold": 0.5, "relation_thresholds": {"nope": 0.2}},
        format="json",
    )
    assert bad.status_code == 400 and "nope" in bad.json()["detail"]
    job = api.post(f"/api/critic/presets/{created.json()['id']}/export/", {"format": "jsonl"})
    assert job.status_code == 202


def test_embed_button_queues_jobs_that_cover_the_corpus(client, researcher, labelled_corpus):
    client.force_login(researcher)
    response = client.post(reverse("critic:embed", args=[labelled_corpus.pk]), follow=True)
    assert response.status_code == 200
    jobs = Job.objects.filter(kind=services.EMBED_JOB)
    assert jobs.exists()
    assert sum(job.params["triples"] for job in jobs) == labelled_corpus.triple_count
    assert "Embedding" in response.content.decode()
