import json
import re
from html import unescape as html_unescape

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from corpora.models import Triple
from critic import charts, selectors
from critic.models import FilterPreset
from critic.services.embedding import EMBED_JOB
from critic.services.scoring import corpus_rescore
from critic.services.training import critic_train
from jobs.models import Job
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def scored(labelled_corpus):
    version = critic_train(corpus=labelled_corpus, queue_rescore=False)
    corpus_rescore(corpus=labelled_corpus)
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
    job = Job.objects.get(kind="corpora.export")
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
    jobs = Job.objects.filter(kind=EMBED_JOB)
    assert jobs.exists()
    assert sum(job.params["triples"] for job in jobs) == labelled_corpus.triple_count
    assert "Embedding" in response.content.decode()


# --- Charts: ticks, the threshold marker, versions told apart ---------------------------


def _svg(html: str, section_id: str) -> str:
    section = html.split(f'id="{section_id}"', 1)[1]
    return section[section.index("<svg") : section.index("</svg>")]


def test_curves_have_labelled_ticks_on_both_axes_and_a_threshold_marker(client, researcher, scored):
    corpus, version = scored
    client.force_login(researcher)
    response = client.get(reverse("critic:dashboard", args=[corpus.pk]))
    html = response.content.decode()
    threshold = response.context["report"].threshold
    for section_id, key in (("pr-curve", "pr"), ("roc-curve", "roc")):
        svg = _svg(html, section_id)
        # Scaled by its viewBox to the card's width (no fixed pixel size).
        assert 'class="curve-chart"' in svg and "width=" not in svg.split(">", 1)[0]
        x_labels = re.findall(r'text-anchor="middle">([\d.]+)</text>', svg.split("x-ticks")[1])
        y_labels = re.findall(r'text-anchor="end">([\d.]+)</text>', svg.split("y-ticks")[1])
        assert x_labels == y_labels == ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]
        # The marker sits on the curve at the threshold shown in the panel.
        marker = re.search(r'<circle class="marker" cx="([\d.]+)" cy="([\d.]+)"', svg)
        frame = charts.Frame(0.0, 1.0, 0.0, 1.0)
        x, y = charts.point_at(version.curves[key], threshold)
        assert float(marker.group(1)) == pytest.approx(frame.px(x), abs=0.1)
        assert float(marker.group(2)) == pytest.approx(frame.py(y), abs=0.1)
        assert f"t = {threshold:.3f}" in svg
        # The browser moves it with the slider along these points (x, y, threshold).
        points = json.loads(html_unescape(re.search(r'data-threshold-points="([^"]+)"', svg)[1]))
        assert [p[2] for p in points] == sorted(p[2] for p in version.curves[key])
    assert 'src="/static/js/critic.js"' in html


def test_point_at_interpolates_between_computed_thresholds():
    points = [[1.0, 0.5, 0.0], [0.6, 0.8, 0.5], [0.2, 1.0, 1.0]]
    assert charts.point_at(points, 0.25) == pytest.approx((0.8, 0.65))
    assert charts.point_at(points, 0.5) == pytest.approx((0.6, 0.8))
    assert charts.point_at(points, -1) == (1.0, 0.5) and charts.point_at(points, 2) == (0.2, 1.0)


def test_versions_on_the_same_labels_are_told_apart_on_the_learning_curve(
    client, researcher, labelled_corpus
):
    first = critic_train(corpus=labelled_corpus, queue_rescore=False)
    second = critic_train(corpus=labelled_corpus, queue_rescore=False)
    assert first.label_count == second.label_count  # the same labels: the same spot
    client.force_login(researcher)
    html = client.get(reverse("critic:dashboard", args=[labelled_corpus.pk])).content.decode()
    svg = _svg(html, "learning-curve")
    dots = re.findall(r'<circle cx="([\d.]+)" cy="([\d.]+)"', svg)
    assert len(dots) == 2 and len(set(dots)) == 2
    (x1, y1), (x2, y2) = ((float(a), float(b)) for a, b in dots)
    assert abs(x1 - x2) >= 7 or abs(y1 - y2) >= 7  # not drawn over each other
    labels = re.findall(r'class="point-label" x="[\d.]+" y="([\d.]+)"[^>]*>([^<]+)<', svg)
    assert {text for _, text in labels} == {
        f"v1 · {first.label_count:,}",
        f"v2 · {second.label_count:,}",
    }
    assert len({y for y, _ in labels}) == 2  # stacked, not printed over each other
    assert f'href="?version={first.number}#curves"' in svg
    x_ticks = re.findall(r'text-anchor="middle">([\d,]+)</text>', svg.split("x-ticks")[1])
    assert x_ticks[0] == "0" and int(x_ticks[-1].replace(",", "")) >= first.label_count


def test_target_precision_offers_the_versions_by_label_count_and_date(
    client, researcher, labelled_corpus
):
    first = critic_train(corpus=labelled_corpus, queue_rescore=False)
    corpus_rescore(corpus=labelled_corpus)
    second = critic_train(corpus=labelled_corpus, queue_rescore=False)
    client.force_login(researcher)
    html = client.get(reverse("critic:dashboard", args=[labelled_corpus.pk])).content.decode()
    form = html.split('id="target"', 1)[1].split("</form>", 1)[0]
    assert '<select name="version"' in form
    options = re.findall(r'<option value="(\d+)"( selected)?>([^<]+)</option>', form)
    assert [int(value) for value, _, _ in options] == [second.number, first.number]
    for (_, _, text), version in zip(options, (second, first), strict=True):
        version.refresh_from_db()
        day = f"{version.created_at:%Y-%m-%d}"
        expected = f"{version.label} · {version.label_count:,} labels · {day}"
        assert text == expected + (" (active)" if version.is_active else "")
    assert sum("(active)" in text for _, _, text in options) == 1

    url = reverse("critic:target", args=[labelled_corpus.pk])
    assert client.get(url, {"version": 9, "target": "0.8"}).status_code == 400
    assert client.get(url, {"version": first.number, "target": "0.8"}).status_code == 200
