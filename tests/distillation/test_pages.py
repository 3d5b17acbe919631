"""Student runs through the researcher pages: create from a preset, follow training live,
download the model, evaluate, send to annotation, compare, trace a triple's lineage."""

import io
import re
import zipfile
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from annotation.models import Campaign
from corpora.models import Triple
from critic.services.presets import preset_save
from critic.services.scoring import corpus_rescore
from critic.services.training import critic_train
from distillation import forms
from distillation.folders import model_folder, run_folder
from distillation.ml.training import EVAL_HISTORY_FILE
from distillation.models import StudentEvaluation, StudentRun
from distillation.services.evaluations import evaluation_create, evaluation_job_run
from distillation.services.runs import TRAIN_JOB, student_run_create, student_run_start
from distillation.services.training import student_train_job_run
from jobs.models import Job
from jobs.progress import progress_write
from tests.factories import CorpusFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def preset(labelled_corpus):
    """The demo corpus scored by a critic, with a saved cut."""
    version = critic_train(corpus=labelled_corpus, queue_rescore=False)
    corpus_rescore(corpus=labelled_corpus)
    return preset_save(corpus=labelled_corpus, name="keep-half", version=version, threshold=0.5)


def run_form(corpus=None, preset=None, **overrides) -> dict:
    data = {
        "name": "student-1",
        "corpus": corpus.pk if corpus else "",
        "preset": preset.pk if preset else "",
        "base_model": "",
        "train_split": "train",
        "val_split": "",
        "epochs": "1",
        "learning_rate": "0.003",
        "batch_size": "8",
        "grad_accum": "1",
        "max_length": "48",
        "max_steps": "4",
        "save_every": "200",
        "seed": "0",
        "device": "cpu",
    }
    data.update(overrides)
    return data


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


@pytest.fixture
def run(labelled_corpus, tiny_gpt2) -> StudentRun:
    """A run on the whole demo corpus, created but not trained. (A learning rate this low
    keeps the tiny random model from learning to end every tail at once, so it writes
    outputs.)"""
    return student_run_create(
        name="whole",
        corpus=labelled_corpus,
        base_model=tiny_gpt2,
        max_steps=4,
        batch_size=8,
        learning_rate=1e-6,
        device="cpu",
    )


@pytest.fixture
def trained(run) -> StudentRun:
    job = student_run_start(run=run)
    student_train_job_run(job_id=job.pk)
    run.refresh_from_db()
    assert run.is_trained, run.job.error
    return run


def test_a_run_created_from_a_preset_is_queued(researcher_client, preset, tiny_gpt2):
    dashboard = researcher_client.get(reverse("critic:dashboard", args=[preset.corpus_id]))
    link = f"{reverse('distillation:run_list')}?preset={preset.pk}"
    assert link in dashboard.text and "Train a student on this cut" in dashboard.text

    form_page = researcher_client.get(link)
    assert form_page.status_code == 200
    # The preset is chosen in its corpus's group, and the corpus with it.
    assert re.search(
        rf'<optgroup label="demo">\s*<option value="{preset.pk}" selected>', form_page.text
    )
    assert re.search(f'<option value="{preset.corpus_id}" selected>demo</option>', form_page.text)

    other = CorpusFactory(name="other")
    refused = researcher_client.post(
        reverse("distillation:run_list"),
        run_form(corpus=other, preset=preset, base_model=tiny_gpt2),
    )
    assert "cuts corpus &#x27;demo&#x27;, not &#x27;other&#x27;" in refused.text
    assert not StudentRun.objects.exists()

    created = researcher_client.post(
        reverse("distillation:run_list"),
        run_form(preset=preset, base_model=tiny_gpt2),  # the preset names the corpus
        follow=True,
    )
    run = StudentRun.objects.get()
    assert created.redirect_chain[-1][0] == reverse("distillation:run_detail", args=[run.pk])
    assert run.corpus_id == preset.corpus_id and run.preset_id == preset.pk
    assert run.critic_version_id == preset.version_id and run.threshold == 0.5
    assert run.max_steps == 4 and run.device == "cpu" and run.created_by is not None
    job = Job.objects.get()
    assert run.job_id == job.pk and job.kind == TRAIN_JOB
    assert job.status == Job.Status.QUEUED and job.task_name == "distillation.run_train_job"

    page = created.text
    assert "keep-half" in page and f"v{preset.version.number}" in page
    assert 'hx-trigger="every 2s"' in page and ">Cancel</button>" in page

    listed = researcher_client.get(reverse("distillation:run_list"))
    assert "student-1" in listed.text and "keep-half" in listed.text
    assert "Queued" in listed.text


def test_a_base_model_that_does_not_load_is_a_clear_form_error(
    researcher_client, labelled_corpus, tmp_path
):
    missing = tmp_path / "no-such-model"
    response = researcher_client.post(
        reverse("distillation:run_list"),
        run_form(corpus=labelled_corpus, base_model=str(missing)),
    )
    assert response.status_code == 200
    errors = response.context["form"].non_field_errors()
    assert errors and str(missing) in errors[0]
    assert 'id="run-errors"' in response.text and str(missing) in response.text
    assert not StudentRun.objects.exists() and not Job.objects.exists()


def test_the_live_fragment_shows_progress_and_the_loss_curve(researcher_client, run):
    job = student_run_start(run=run)
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING)
    progress_write(
        job.pk, done=4, total=10, message="step 4/10 · loss 2.500 · 1,234 tokens/s · ETA 1.5 min"
    )
    # The row is written every few seconds, so it lags the live progress by a step.
    StudentRun.objects.filter(pk=run.pk).update(
        steps=3, total_steps=10, train_loss=2.5, loss_history=[[1, 3.0], [2, 2.8], [3, 2.5]]
    )
    url = reverse("distillation:run_detail", args=[run.pk])

    fragment = researcher_client.get(url, headers={"HX-Request": "true"})

    html = fragment.text
    assert html.lstrip().startswith('<section class="card" id="run-live"')
    assert "<html" not in html and "Hyperparameters" not in html
    assert 'hx-trigger="every 2s"' in html and "HX-Refresh" not in fragment
    assert "40%" in html and "ETA 1.5 min" in html and "1,234 tokens/s" in html
    assert "<dd>4 / 10</dd>" in html  # the live step, not the row's
    assert re.search(r'<svg class="curve-chart"[^>]*aria-label="Training and validation loss', html)
    points = re.search(r'<polyline points="([^"]+)" class="curve train"', html).group(1).split()
    assert len(points) == 3
    assert ">Cancel</button>" in html  # training checks for a cancel between steps

    # Once the job ends, the poll asks for the whole page (download, evaluation form).
    Job.objects.filter(pk=job.pk).update(status=Job.Status.FAILED, error="CUDA out of memory")
    ended = researcher_client.get(url, headers={"HX-Request": "true"})
    assert ended["HX-Refresh"] == "true" and "CUDA out of memory" in ended.text


def test_cancel_and_start_again(researcher_client, run):
    job = student_run_start(run=run)
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING)

    cancelled = researcher_client.post(
        reverse("distillation:run_cancel", args=[run.pk]), follow=True
    )
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED
    assert "cancelled" in messages_of(cancelled)[-1]
    assert ">Start again</button>" in cancelled.text and ">Cancel</button>" not in cancelled.text

    again = researcher_client.post(reverse("distillation:run_start", args=[run.pk]), follow=True)
    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED and Job.objects.count() == 1
    assert "queued" in messages_of(again)[-1]


def test_a_trained_run_shows_its_curve_and_downloads_its_model(researcher_client, trained):
    page = researcher_client.get(reverse("distillation:run_detail", args=[trained.pk]))
    html = page.text
    assert page.status_code == 200 and "hx-trigger" not in html
    assert 'id="loss-curve"' in html and "<polyline" in html
    assert "Trained" in html and "Download the model" in html
    assert "New evaluation" in html
    # Lineage: the whole corpus, no cut.
    assert 'id="lineage"' in html and "none: every triple of the split" in html

    download = researcher_client.get(reverse("distillation:run_download", args=[trained.pk]))
    assert download.status_code == 200
    assert download["Content-Disposition"].startswith("attachment")
    names = zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content))).namelist()
    assert "whole/config.json" in names and "whole/README.md" in names


def test_an_untrained_run_has_no_download(researcher_client, run):
    page = researcher_client.get(reverse("distillation:run_detail", args=[run.pk]))
    assert "Download the model" not in page.text and "New evaluation" not in page.text
    response = researcher_client.get(reverse("distillation:run_download", args=[run.pk]))
    assert response.status_code == 404


def test_evaluate_send_to_annotation_and_compare(researcher_client, trained):
    created = researcher_client.post(
        reverse("distillation:evaluation_create", args=[trained.pk]),
        {
            "heads_from": "split",
            "heads_split": "test",
            "heads": "",
            "max_heads": "3",
            "relations": ["xNeed", "xWant"],
            "decoding": "greedy",
            "n_per_pair": "1",
            "num_beams": "5",
            "max_new_tokens": "6",
            "temperature": "1.0",
            "top_p": "0.9",
            "seed": "0",
        },
    )
    evaluation = StudentEvaluation.objects.get()
    assert created["Location"] == reverse("distillation:evaluation_detail", args=[evaluation.pk])
    assert set(evaluation.relations.values_list("name", flat=True)) == {"xNeed", "xWant"}
    assert evaluation.max_heads == 3 and evaluation.job.status == Job.Status.QUEUED
    url = reverse("distillation:evaluation_detail", args=[evaluation.pk])
    queued = researcher_client.get(url)
    assert 'hx-trigger="every 2s"' in queued.text and "Send to annotation" not in queued.text

    # An active critic of the run's corpus measures the outputs (and scores each one).
    critic_train(corpus=trained.corpus, queue_rescore=False)
    evaluation_job_run(job_id=evaluation.job_id)

    evaluation.refresh_from_db()
    overall = evaluation.metrics["overall"]
    page = researcher_client.get(url)
    html = page.text
    assert "hx-trigger" not in html and 'id="metrics-by-relation"' in html
    assert f"{overall['distinct_1']:.3f}" in html
    assert re.search(r"<td>xNeed</td>", html) and re.search(r"<td>xWant</td>", html)
    output = Triple.objects.filter(corpus=evaluation.corpus).select_related("head").first()
    assert output.head.text in html and output.tail in html
    corpus_link = reverse("corpora:corpus_detail", args=[evaluation.corpus_id])
    assert corpus_link in html

    send_form = {"size": "", "judgments_per_item": "3", "gold_share": "0.1"}
    sent = researcher_client.post(
        reverse("distillation:evaluation_send", args=[evaluation.pk]), send_form
    )
    campaign = Campaign.objects.get(corpus=evaluation.corpus)
    assert sent["Location"] == reverse("annotation:campaign_detail", args=[campaign.pk])
    # The box left unticked: the student's outputs alone.
    assert campaign.item_count == evaluation.corpus.triple_count
    again = researcher_client.post(
        reverse("distillation:evaluation_send", args=[evaluation.pk]), send_form
    )
    assert again["Location"] == sent["Location"]
    assert Campaign.objects.filter(corpus=evaluation.corpus).count() == 1
    sent_page = researcher_client.get(url)
    assert "Send to annotation" not in sent_page.text and campaign.name in sent_page.text

    run_page = researcher_client.get(reverse("distillation:run_detail", args=[trained.pk]))
    assert evaluation.corpus.name in run_page.text and "in annotation" in run_page.text

    compare = researcher_client.get(reverse("distillation:comparison", args=[trained.corpus_id]))
    rows = compare.context["rows"]
    assert [item["row"].kind for item in rows] == ["teacher", "student"]
    html = compare.text
    assert 'class="comparison-teacher"' in html and 'class="comparison-student"' in html
    assert "whole (greedy)" in html and '<svg class="acceptance-chart"' in html
    # Acceptance by relation: a row per relation, a column per corpus (fits any width).
    by_relation = html.split('id="relation-table"', 1)[1].split("</table>", 1)[0]
    relations = compare.context["relations"]
    assert re.findall(r'<th scope="row">([^<]+)</th>', by_relation) == relations
    assert by_relation.count('<th class="num wrap') == len(rows)
    teacher = rows[0]["row"]
    assert teacher.acceptance.basis == "human"  # the demo corpus's imported labels
    assert f"{100 * teacher.acceptance.rate:.1f}%" in html

    lineage = researcher_client.get(reverse("distillation:triple_lineage", args=[output.pk]))
    assert lineage.status_code == 200
    assert "Written by a student" in lineage.text and "whole" in lineage.text
    assert reverse("distillation:run_detail", args=[trained.pk]) in lineage.text
    # The evaluation scored every output with the run corpus's critic: the page says so.
    score = Triple.objects.with_score(evaluation.corpus_id).get(pk=output.pk).score
    assert score is not None and "Not scored" not in lineage.text
    critic = lineage.text.split('id="critic"', 1)[1].split("</section>", 1)[0]
    assert f"<strong>{score:.3f}</strong>" in critic
    version = evaluation.metrics["critic"]["version"]
    assert f"critic v{version} of {trained.corpus.name}" in critic
    assert reverse("distillation:evaluation_detail", args=[evaluation.pk]) in critic
    scored = Triple.objects.filter(corpus=evaluation.corpus).with_score(evaluation.corpus_id)
    assert not scored.filter(score__isnull=True).exists()


def test_the_corpus_page_links_to_comparison_and_lineage(researcher_client, labelled_corpus):
    page = researcher_client.get(reverse("corpora:corpus_detail", args=[labelled_corpus.pk]))
    assert reverse("distillation:comparison", args=[labelled_corpus.pk]) in page.text
    triple = Triple.objects.filter(corpus=labelled_corpus).order_by("pk").first()
    assert reverse("distillation:triple_lineage", args=[triple.pk]) in page.text
    lineage = researcher_client.get(reverse("distillation:triple_lineage", args=[triple.pk]))
    assert triple.tail in lineage.text and "imported" in lineage.text


@pytest.fixture
def evaluation(run) -> StudentEvaluation:
    """An evaluation (not run) of a run marked trained: enough to reach every page."""
    StudentRun.objects.filter(pk=run.pk).update(finished_at=timezone.now())
    run.refresh_from_db()
    return evaluation_create(run=run, max_heads=2)


def _page_urls(evaluation: StudentEvaluation) -> list[str]:
    run = evaluation.run
    triple = Triple.objects.filter(corpus=run.corpus).first()
    return [
        reverse("distillation:run_list"),
        reverse("distillation:run_detail", args=[run.pk]),
        reverse("distillation:evaluation_detail", args=[evaluation.pk]),
        reverse("distillation:comparison", args=[run.corpus_id]),
        reverse("distillation:triple_lineage", args=[triple.pk]),
    ]


def test_annotators_are_refused_every_page(annotator_client, evaluation):
    run = evaluation.run
    for url in [*_page_urls(evaluation), reverse("distillation:run_download", args=[run.pk])]:
        assert annotator_client.get(url).status_code == 403, url
    posts = [
        reverse("distillation:run_list"),
        reverse("distillation:run_start", args=[run.pk]),
        reverse("distillation:run_cancel", args=[run.pk]),
        reverse("distillation:evaluation_create", args=[run.pk]),
        reverse("distillation:evaluation_start", args=[evaluation.pk]),
        reverse("distillation:evaluation_send", args=[evaluation.pk]),
    ]
    for url in posts:
        assert annotator_client.post(url, {}).status_code == 403, url
    assert not Job.objects.exists()
    assert not Campaign.objects.filter(corpus=evaluation.corpus).exists()


def test_researchers_see_every_page(researcher_client, evaluation):
    for url in _page_urls(evaluation):
        response = researcher_client.get(url)
        assert response.status_code == 200, url
        assert 'aria-current="page">Students</a>' in response.text, url


def test_the_live_fragment_plots_validation_loss_while_training(researcher_client, run):
    job = student_run_start(run=run)
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING)
    StudentRun.objects.filter(pk=run.pk).update(
        val_split="val",
        steps=30,
        total_steps=40,
        loss_history=[[step, 5.0 - step / 10] for step in range(1, 31)],
    )
    # What training writes beside its checkpoints as it evaluates (distillation.ml.training).
    folder = run_folder(run)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / EVAL_HISTORY_FILE).write_text("[[10, 4.5], [20, 4.2], [30, 4.4]]")

    html = researcher_client.get(
        reverse("distillation:run_detail", args=[run.pk]), headers={"HX-Request": "true"}
    ).text

    curve = html.split('id="loss-curve"', 1)[1]
    validation = re.search(r'<polyline points="([^"]+)" class="curve validation"', curve)
    assert len(validation.group(1).split()) == 3
    assert len(re.findall(r'class="dot validation"', curve)) == 3
    assert "step 20: validation loss 4.2000" in curve  # each point's title
    assert "Validation loss, 3 evaluations (last: step 30: validation loss 4.4000)" in curve
    # Both curves share the axes: the x axis runs to the planned 40 steps.
    x_ticks = re.findall(r'text-anchor="middle">([\d,]+)</text>', curve.split("x-ticks")[1])
    assert x_ticks[-1] == "40"

    detail = APIClient()
    detail.force_authenticate(run.created_by or UserFactory(role="researcher"))
    body = detail.get(f"/api/students/{run.pk}/").json()
    assert body["eval_history"] == [[10, 4.5], [20, 4.2], [30, 4.4]]


def test_the_base_model_is_filled_in_with_the_demo_model(
    researcher_client, labelled_corpus, tiny_gpt2, monkeypatch
):
    monkeypatch.setattr(forms, "DEMO_BASE_MODEL", Path(tiny_gpt2))
    html = researcher_client.get(reverse("distillation:run_list")).text
    field = re.search(r'<input type="text" name="base_model"[^>]*>', html).group(0)
    assert f'value="{tiny_gpt2}"' in field
    assert f"The demo&#x27;s tiny untrained GPT-2, to try the pipeline: {tiny_gpt2}" in html

    monkeypatch.setattr(forms, "DEMO_BASE_MODEL", Path(tiny_gpt2) / "not-there")
    html = researcher_client.get(reverse("distillation:run_list")).text
    field = re.search(r'<input type="text" name="base_model"[^>]*>', html).group(0)
    assert "value=" not in field


def test_the_model_card_shows_how_to_generate_a_tail(trained, capsys):
    card = (model_folder(trained) / "README.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", card, re.S).group(1)
    assert "model.generate(" in code and "print(" in code
    assert 'PATH = "whole"' in code  # the folder the download unzips to
    # Runnable as written, once PATH names the folder.
    code = code.replace('PATH = "whole"', f"PATH = {str(model_folder(trained))!r}")
    exec(compile(code, "README.md", "exec"), {})  # noqa: S102
    printed = capsys.readouterr().out.strip()
    assert printed and "[GEN]" not in printed and "<xNeed>" not in printed
