"""Uploads through the page and the API: the size limit (a 413 and nothing kept), a failed
import's "Import the valid lines", and what happens to the upload afterwards."""

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from corpora.models import Corpus, Triple
from corpora.services import corpus_import_job_run
from jobs.models import Job

pytestmark = pytest.mark.django_db

GOOD = b"PersonX eats\txNeed\ta fork\nPersonX eats\txWant\tto nap\n"
BAD = GOOD + b"PersonX eats\txNope\ta spoon\nPersonX sleeps\txNeed\t\n"


@pytest.fixture
def api(researcher) -> APIClient:
    client = APIClient()
    client.force_login(researcher)
    return client


def uploads(settings) -> list[Path]:
    root = Path(settings.MEDIA_ROOT) / "uploads"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def post_page(client, content: bytes, **fields):
    data = {"file": SimpleUploadedFile("c.tsv", content), "corpus_name": "up", "format": "auto"}
    return client.post(reverse("corpora:corpus_import"), {**data, **fields})


# --- The size limit ----------------------------------------------------------------


@pytest.mark.parametrize("size", [200_000, 1_500], ids=["by Content-Length", "while streaming"])
def test_the_page_answers_413_for_a_file_over_the_limit_and_keeps_nothing(
    researcher_client, settings, size
):
    settings.IMPORT_MAX_UPLOAD_BYTES = 1_000
    response = post_page(researcher_client, b"x" * size)
    assert response.status_code == 413
    html = response.content.decode()
    assert "larger than the upload limit of 1,000 bytes" in html
    assert "IMPORT_MAX_UPLOAD_BYTES" in html
    assert not Job.objects.exists()
    assert uploads(settings) == []


@pytest.mark.parametrize("size", [200_000, 1_500], ids=["by Content-Length", "while streaming"])
def test_the_api_answers_413_for_a_file_over_the_limit_and_keeps_nothing(api, settings, size):
    settings.IMPORT_MAX_UPLOAD_BYTES = 1_000
    upload = SimpleUploadedFile("c.tsv", b"x" * size)
    response = api.post("/api/imports/", {"file": upload, "corpus": "up"}, format="multipart")
    assert response.status_code == 413
    assert "upload limit of 1,000 bytes" in response.json()["detail"]
    assert not Job.objects.exists()
    assert uploads(settings) == []


def test_a_file_under_the_limit_is_taken(researcher_client, settings):
    settings.IMPORT_MAX_UPLOAD_BYTES = len(GOOD)
    assert post_page(researcher_client, GOOD).status_code == 302
    assert len(uploads(settings)) == 1


def test_the_upload_page_still_checks_csrf(researcher):
    client = Client(enforce_csrf_checks=True)
    client.force_login(researcher)
    assert post_page(client, GOOD).status_code == 403
    client.get(reverse("corpora:corpus_import"))
    token = client.cookies["csrftoken"].value
    assert post_page(client, GOOD, csrfmiddlewaretoken=token).status_code == 302


def test_annotators_cannot_upload(annotator_client, settings):
    assert post_page(annotator_client, GOOD).status_code == 403
    assert uploads(settings) == []


# --- A failed import, then its valid lines ----------------------------------------


def test_a_failed_upload_shows_no_green_banner_and_offers_the_valid_lines(researcher_client):
    response = post_page(researcher_client, BAD, follow=True)
    assert "Upload received" not in response.content.decode()
    job = Job.objects.get()
    with pytest.raises(Exception, match="invalid line"):
        corpus_import_job_run(job_id=job.pk)
    page = researcher_client.get(reverse("jobs:job_detail", args=[job.pk])).content.decode()
    assert "Failed" in page
    assert "Upload received" not in page
    assert "c.tsv, line 3, field &#x27;relation&#x27;" in page
    assert "c.tsv, line 4, field &#x27;tail&#x27;: empty" in page
    action = reverse("corpora:corpus_import_valid_lines", args=[job.pk])
    assert f'action="{action}"' in page
    assert "Import the valid lines" in page

    response = researcher_client.post(action)
    again = Job.objects.exclude(pk=job.pk).get()
    assert response.status_code == 302
    assert response["Location"] == reverse("jobs:job_detail", args=[again.pk])
    assert again.params["skip_invalid"] is True
    assert again.params["path"] == job.params["path"]
    assert again.params["valid_lines_of"] == job.pk
    corpus_import_job_run(job_id=again.pk)
    again.refresh_from_db()
    assert again.status == "succeeded"
    assert (again.result["imported"], again.result["rejected"]) == (2, 2)
    assert set(Triple.objects.filter(corpus__name="up").values_list("tail", flat=True)) == {
        "a fork",
        "to nap",
    }

    # Once only: a second click says which job did it.
    response = researcher_client.post(action, follow=True)
    assert f"already imported by job {again.pk}" in response.content.decode()
    assert Job.objects.count() == 2


def test_the_api_imports_the_valid_lines_of_a_failed_import(api):
    upload = SimpleUploadedFile("c.tsv", BAD)
    job_id = api.post("/api/imports/", {"file": upload, "corpus": "up"}, format="multipart").json()[
        "id"
    ]
    with pytest.raises(Exception, match="invalid line"):
        corpus_import_job_run(job_id=job_id)
    response = api.post(f"/api/imports/{job_id}/valid-lines/")
    assert response.status_code == 202
    new_id = response.json()["id"]
    corpus_import_job_run(job_id=new_id)
    assert api.get(f"/api/jobs/{new_id}/").json()["result"]["imported"] == 2
    again = api.post(f"/api/imports/{job_id}/valid-lines/")
    assert again.status_code == 409
    assert f"already imported by job {new_id}" in again.json()["detail"]


def test_only_a_failed_import_has_valid_lines_to_import(api):
    upload = SimpleUploadedFile("c.tsv", GOOD)
    job_id = api.post("/api/imports/", {"file": upload, "corpus": "up"}, format="multipart").json()[
        "id"
    ]
    assert api.post(f"/api/imports/{job_id}/valid-lines/").status_code == 409  # queued
    corpus_import_job_run(job_id=job_id)
    response = api.post(f"/api/imports/{job_id}/valid-lines/")
    assert response.status_code == 409
    assert "Only a failed import" in response.json()["detail"]


def test_annotators_cannot_import_valid_lines(annotator, researcher_client):
    post_page(researcher_client, BAD)
    job = Job.objects.get()
    with pytest.raises(Exception, match="invalid line"):
        corpus_import_job_run(job_id=job.pk)
    url = reverse("corpora:corpus_import_valid_lines", args=[job.pk])
    client = Client()
    client.force_login(annotator)
    assert client.post(url).status_code == 403
    assert Job.objects.count() == 1


# --- The upload afterwards ---------------------------------------------------------


def test_a_succeeded_import_deletes_its_upload_and_a_failed_one_keeps_it(
    researcher_client, settings
):
    post_page(researcher_client, GOOD, corpus_name="good")
    good = Job.objects.get()
    corpus_import_job_run(job_id=good.pk)
    assert not Path(good.params["path"]).exists()
    assert Corpus.objects.get(name="good").triple_count == 2

    post_page(researcher_client, BAD, corpus_name="bad")
    bad = Job.objects.exclude(pk=good.pk).get()
    with pytest.raises(Exception, match="invalid line"):
        corpus_import_job_run(job_id=bad.pk)
    assert Path(bad.params["path"]).is_file()


def test_a_succeeded_import_keeps_its_rejected_lines_for_download(researcher_client):
    post_page(researcher_client, BAD, skip_invalid="on")
    job = Job.objects.get()
    corpus_import_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert not Path(job.params["path"]).exists()
    response = researcher_client.get(reverse("jobs:job_rejected", args=[job.pk]))
    assert response.status_code == 200
    assert b"xNope" in b"".join(response.streaming_content)


def test_the_page_offers_the_none_tails_choice(researcher_client):
    html = researcher_client.get(reverse("corpora:corpus_import")).content.decode()
    assert 'name="none_tails"' in html
    post_page(researcher_client, GOOD + b"PersonX eats\txNeed\tnone\n", none_tails="keep")
    job = Job.objects.get()
    assert job.params["drop_none"] is False
    corpus_import_job_run(job_id=job.pk)
    assert Corpus.objects.get(name="up").triple_count == 3
