"""Student runs, evaluations and the comparison through the API."""

import io
import zipfile

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from annotation.models import Campaign, Item
from distillation.models import StudentRun
from distillation.services.evaluations import evaluation_create, evaluation_job_run
from distillation.services.runs import TRAIN_JOB, student_run_create
from distillation.services.training import student_train, student_train_job_run
from jobs.models import Job

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(researcher) -> APIClient:
    client = APIClient()
    client.force_authenticate(researcher)
    return client


def run_body(corpus_, base_model, **overrides) -> dict:
    # A learning rate this low keeps the tiny random model writing tails (see test_pages).
    body = {
        "name": "api-student",
        "corpus": corpus_.pk,
        "base_model": base_model,
        "max_steps": 3,
        "batch_size": 8,
        "learning_rate": 1e-6,
        "max_length": 48,
        "device": "cpu",
    }
    return {**body, **overrides}


def test_create_train_and_read_a_run(api, labelled_corpus, tiny_gpt2):
    created = api.post("/api/students/", run_body(labelled_corpus, tiny_gpt2), format="json")
    assert created.status_code == 201, created.json()
    run = created.json()
    assert run["corpus_name"] == "demo" and run["preset"] is None
    assert run["architecture"] == "causal" and run["max_steps"] == 3
    assert run["status"] == "queued" and run["model"] is None
    assert run["progress"]["kind"] == TRAIN_JOB
    assert run["progress"]["status"] == "queued"
    assert StudentRun.objects.get().job_id == run["progress"]["id"] == run["job"]
    assert api.get(f"/api/students/{run['id']}/model/").status_code == 404

    student_train_job_run(job_id=run["job"])

    detail = api.get(f"/api/students/{run['id']}/").json()
    assert detail["status"] == "trained" and detail["steps"] == 3
    assert detail["progress"]["status"] == "succeeded"
    assert len(detail["loss_history"]) == 3 and detail["train_examples"] > 0
    assert detail["model"].endswith(f"/api/students/{run['id']}/model/")
    assert [r["id"] for r in api.get("/api/students/").json()] == [run["id"]]

    model = api.get(f"/api/students/{run['id']}/model/")
    assert model.status_code == 200 and model["Content-Type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(b"".join(model.streaming_content))).namelist()
    assert "api-student/config.json" in names and "api-student/README.md" in names

    lineage = api.get(f"/api/students/{run['id']}/lineage/").json()
    assert lineage["run"]["name"] == "api-student" and lineage["corpus"]["name"] == "demo"
    assert lineage["cut"] is None and lineage["generation_runs"] == []

    # Finished: starting again is refused, and so is a cancel.
    assert api.post(f"/api/students/{run['id']}/start/").status_code == 409
    assert api.post(f"/api/students/{run['id']}/cancel/").status_code == 409


def test_cancel_and_start_again(api, labelled_corpus, tiny_gpt2):
    run = api.post("/api/students/", run_body(labelled_corpus, tiny_gpt2), format="json").json()
    cancelled = api.post(f"/api/students/{run['id']}/cancel/")
    assert cancelled.status_code == 202 and cancelled.json()["status"] == "cancelled"
    started = api.post(f"/api/students/{run['id']}/start/")
    assert started.status_code == 202 and started.json()["status"] == "queued"
    assert started.json()["id"] == run["job"] and Job.objects.count() == 1


def test_bad_runs_are_refused_with_the_reason(api, labelled_corpus, tiny_gpt2, tmp_path):
    missing = str(tmp_path / "no-such-model")
    bad_model = api.post("/api/students/", run_body(labelled_corpus, missing), format="json")
    assert bad_model.status_code == 400 and missing in bad_model.json()["detail"]
    no_data = api.post(
        "/api/students/", run_body(labelled_corpus, tiny_gpt2, corpus=None), format="json"
    )
    assert no_data.status_code == 400 and "corpus" in no_data.json()
    bad_split = api.post(
        "/api/students/",
        run_body(labelled_corpus, tiny_gpt2, train_split="nope"),
        format="json",
    )
    assert bad_split.status_code == 400 and "split 'nope'" in bad_split.json()["detail"]
    bad_rate = api.post(
        "/api/students/", run_body(labelled_corpus, tiny_gpt2, batch_size=0), format="json"
    )
    assert bad_rate.status_code == 400 and "batch_size" in bad_rate.json()
    assert not StudentRun.objects.exists() and not Job.objects.exists()


def test_evaluate_send_to_annotation_and_compare(api, labelled_corpus, tiny_gpt2):
    run = student_run_create(
        name="api-student",
        corpus=labelled_corpus,
        base_model=tiny_gpt2,
        max_steps=2,
        batch_size=8,
        learning_rate=1e-6,
        device="cpu",
    )
    untrained = api.post(f"/api/students/{run.pk}/evaluations/", {}, format="json")
    assert untrained.status_code == 400 and "not finished" in untrained.json()["detail"]
    student_train(run=run)

    created = api.post(
        f"/api/students/{run.pk}/evaluations/",
        {"heads_split": "test", "max_heads": 3, "relations": ["xNeed"], "max_new_tokens": 6},
        format="json",
    )
    assert created.status_code == 201, created.json()
    evaluation = created.json()
    assert evaluation["relations"] == ["xNeed"] and evaluation["job"]["status"] == "queued"
    assert evaluation["metrics"] == {}

    evaluation_job_run(job_id=evaluation["job"]["id"])

    detail = api.get(f"/api/evaluations/{evaluation['id']}/").json()
    assert detail["job"]["status"] == "succeeded" and detail["pairs"] == 3
    assert detail["metrics"]["written"] > 0
    assert set(detail["metrics"]["relations"]) == {"xNeed"}
    listed = api.get(f"/api/students/{run.pk}/evaluations/").json()
    assert [e["id"] for e in listed] == [evaluation["id"]]

    sent = api.post(f"/api/evaluations/{evaluation['id']}/send-to-annotation/")
    assert sent.status_code == 201
    campaign = sent.json()
    assert campaign["corpus"] == evaluation["corpus"]
    # The outputs and the teacher's tails for the same heads and relations, blind.
    items = Item.objects.filter(campaign_id=campaign["id"], is_gold=False)
    assert items.filter(source__in=["student", "both"]).count() == detail["metrics"]["written"]
    assert campaign["items"] == items.count() and "api-student" not in campaign["name"]
    again = api.post(f"/api/evaluations/{evaluation['id']}/send-to-annotation/")
    assert again.status_code == 200 and again.json()["id"] == campaign["id"]
    assert Campaign.objects.filter(corpus_id=evaluation["corpus"]).count() == 1

    rows = api.get(f"/api/corpora/{labelled_corpus.pk}/comparison/").json()
    assert [row["kind"] for row in rows] == ["teacher", "student"]
    teacher, student = rows
    assert teacher["size"] == labelled_corpus.triple_count
    assert teacher["acceptance"]["basis"] == "human"
    assert 0 < teacher["acceptance"]["low"] <= teacher["acceptance"]["rate"]
    assert teacher["acceptance"]["rate"] <= teacher["acceptance"]["high"] < 1
    assert "xNeed" in teacher["relations"]
    assert student["size"] == detail["metrics"]["written"]
    assert student["link"]["evaluation"] == evaluation["id"]


def test_annotators_get_403(labelled_corpus, tiny_gpt2, annotator):
    run = student_run_create(name="s", corpus=labelled_corpus, base_model=tiny_gpt2, device="cpu")
    StudentRun.objects.filter(pk=run.pk).update(finished_at=timezone.now())
    run.refresh_from_db()
    evaluation = evaluation_create(run=run, max_heads=2)
    client = APIClient()
    client.force_authenticate(annotator)
    for url in (
        "/api/students/",
        f"/api/students/{run.pk}/",
        f"/api/students/{run.pk}/lineage/",
        f"/api/students/{run.pk}/model/",
        f"/api/students/{run.pk}/evaluations/",
        f"/api/evaluations/{evaluation.pk}/",
        f"/api/corpora/{labelled_corpus.pk}/comparison/",
    ):
        assert client.get(url).status_code == 403, url
    for url in (
        "/api/students/",
        f"/api/students/{run.pk}/start/",
        f"/api/students/{run.pk}/cancel/",
        f"/api/students/{run.pk}/evaluations/",
        f"/api/evaluations/{evaluation.pk}/send-to-annotation/",
    ):
        assert client.post(url, {}, format="json").status_code == 403, url
    assert not Job.objects.exists() and evaluation.campaign_id is None
    assert APIClient().get("/api/students/").status_code in (401, 403)


def test_the_schema_documents_the_student_api(researcher_client):
    schema = researcher_client.get("/api/schema/")
    assert schema.status_code == 200
    for path in (
        b"/api/students/:",
        b"/api/students/{id}/:",
        b"/api/students/{id}/model/:",
        b"/api/students/{id}/lineage/:",
        b"/api/students/{id}/evaluations/:",
        b"/api/evaluations/{id}/:",
        b"/api/evaluations/{id}/send-to-annotation/:",
        b"/api/corpora/{id}/comparison/:",
    ):
        assert path in schema.content, path


def test_the_lineage_names_the_import_job_that_made_the_corpus(api, tmp_path, tiny_gpt2):
    from corpora.models import Corpus
    from corpora.services import corpus_import_job_create, corpus_import_job_run

    path = tmp_path / "triples.tsv"
    path.write_text("PersonX bakes bread\txNeed\tflour\nPersonX bakes bread\txWant\tto eat\n")
    job = corpus_import_job_create(path=path, corpus_name="imported", fmt="atomic-tsv")
    corpus_import_job_run(job_id=job.pk)
    run = student_run_create(
        name="s", corpus=Corpus.objects.get(name="imported"), base_model=tiny_gpt2
    )

    lineage = api.get(f"/api/students/{run.pk}/lineage/").json()

    assert [i["job"] for i in lineage["imports"]] == [job.pk]
    assert lineage["imports"][0]["file"] == str(path)
