"""An import's rules hold at every door: the service, the CLI, the API and the page refuse
the same corpus name or format with the same words, before the file is read (issue 16,
"one error type")."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from rest_framework.test import APIClient

from core.errors import AppError
from corpora.models import Corpus
from corpora.services import corpus_import, corpus_import_job_create
from jobs.models import Job

pytestmark = pytest.mark.django_db

TSV = b"PersonX naps\txNeed\ta bed\n"
RULES = [
    ("x" * 101, "Ensure this value has at most 100 characters (it has 101)."),
    ("   ", "This field is required."),
]
IDS = ["too-long", "blank"]


@pytest.fixture
def tsv(tmp_path):
    path = tmp_path / "naps.tsv"
    path.write_bytes(TSV)
    return path


@pytest.mark.parametrize(("name", "message"), RULES, ids=IDS)
def test_the_import_services_refuse_the_corpus_name(tsv, name, message):
    for service in (corpus_import, corpus_import_job_create):
        with pytest.raises(AppError) as refused:
            service(path=tsv, corpus_name=name)
        assert (str(refused.value), refused.value.field) == (message, "corpus_name")
    assert not Corpus.objects.exists() and not Job.objects.exists()


@pytest.mark.parametrize(("name", "message"), RULES, ids=IDS)
def test_the_cli_refuses_the_corpus_name_the_page_and_api_refuse(
    tsv, researcher, researcher_client, name, message
):
    with pytest.raises(CommandError) as refused:
        call_command(
            "import_corpus",
            str(tsv),
            "--corpus",
            name,
            "--no-progress",
            stdout=io.StringIO(),
            stderr=io.StringIO(),
        )
    assert str(refused.value) == message

    api = APIClient()
    api.force_authenticate(researcher)
    upload = SimpleUploadedFile("naps.tsv", TSV)
    response = api.post("/api/imports/", {"file": upload, "corpus": name}, format="multipart")
    assert response.status_code == 400 and response.json()["corpus"] == [message]

    form = {"file": SimpleUploadedFile("naps.tsv", TSV), "corpus_name": name, "format": "auto"}
    page = researcher_client.post(reverse("corpora:corpus_import"), form)
    assert page.context["form"].errors["corpus_name"] == [message]
    assert not Corpus.objects.exists() and not Job.objects.exists()


def test_an_unknown_format_is_refused_in_the_same_words(tsv, researcher, researcher_client):
    message = "Select a valid choice. xml is not one of the available choices."
    with pytest.raises(AppError) as refused:
        corpus_import(path=tsv, corpus_name="c", fmt="xml")
    assert (str(refused.value), refused.value.field) == (message, "format")

    api = APIClient()
    api.force_authenticate(researcher)
    upload = SimpleUploadedFile("naps.tsv", TSV)
    body = {"file": upload, "corpus": "c", "format": "xml"}
    response = api.post("/api/imports/", body, format="multipart")
    assert response.status_code == 400 and response.json()["format"] == [message]

    form = {"file": SimpleUploadedFile("naps.tsv", TSV), "corpus_name": "c", "format": "xml"}
    page = researcher_client.post(reverse("corpora:corpus_import"), form)
    assert page.context["form"].errors["format"] == [message]
    assert not Corpus.objects.exists() and not Job.objects.exists()
