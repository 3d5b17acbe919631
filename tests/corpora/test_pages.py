import re
from pathlib import Path

import orjson
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from corpora.models import Corpus, Relation, Triple
from corpora.services import (
    corpus_export_job_run,
    corpus_import,
    corpus_import_job_run,
    corpus_refresh_counts,
)
from jobs.models import Job
from tests.factories import CorpusFactory, EventFactory, TripleFactory, UserFactory

pytestmark = pytest.mark.django_db

FISHING, BREAD = "PersonX goes fishing", "PersonX bakes bread"
ROWS = [
    {"head": FISHING, "relation": "xNeed", "tail": "a fishing rod", "split": "train"},
    {"head": FISHING, "relation": "xWant", "tail": "to eat fish", "split": "test"},
    {"head": BREAD, "relation": "xNeed", "tail": "flour", "split": "train"},
    {"head": BREAD, "relation": "xAttr", "tail": "skilled", "split": "val"},
]


def jsonl(rows) -> bytes:
    return b"".join(orjson.dumps(row) + b"\n" for row in rows)


@pytest.fixture
def corpus(tmp_path) -> Corpus:
    path = tmp_path / "small.jsonl"
    path.write_bytes(jsonl(ROWS))
    corpus_import(path=path, corpus_name="small")
    return Corpus.objects.get(name="small")


@pytest.fixture
def big_corpus() -> Corpus:
    """60 triples, one head in ten about baking, counted into the corpus stats."""
    corpus = CorpusFactory(name="big")
    for i in range(60):
        head = EventFactory(text=f"PersonX bakes cake {i}" if i % 10 == 0 else f"PersonX runs {i}")
        TripleFactory(corpus=corpus, head=head, tail=f"tail number {i:02d}")
    corpus_refresh_counts(corpus=corpus)
    return corpus


def researcher_pages(corpus: Corpus) -> list[str]:
    return [
        reverse("corpora:corpus_list"),
        reverse("corpora:corpus_import"),
        reverse("corpora:corpus_detail", args=[corpus.pk]),
        reverse("corpora:relation_list"),
    ]


def test_every_page_renders_for_a_researcher(researcher_client, corpus):
    for url in researcher_pages(corpus):
        response = researcher_client.get(url)
        assert response.status_code == 200, url
        assert "<html" in response.content.decode()


def test_annotators_are_refused_every_corpus_page(annotator_client, corpus):
    for url in researcher_pages(corpus):
        assert annotator_client.get(url).status_code == 403, url
    export = reverse("corpora:corpus_export", args=[corpus.pk])
    assert annotator_client.post(export, {"format": "jsonl"}).status_code == 403
    assert annotator_client.post(reverse("corpora:relation_list"), {}).status_code == 403
    assert not Job.objects.exists()


def test_anonymous_users_are_sent_to_login(client, corpus):
    for url in researcher_pages(corpus):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"] == f"{reverse('login')}?next={url}"


def test_corpus_list_shows_corpora_with_counts(researcher_client, corpus):
    html = researcher_client.get(reverse("corpora:corpus_list")).content.decode()
    assert reverse("corpora:corpus_detail", args=[corpus.pk]) in html
    assert ">small</a>" in html
    assert reverse("corpora:corpus_import") in html
    assert re.search(r'<td class="num">\s*4\s*</td>', html)


def test_corpus_detail_shows_counts_samples_and_triples(researcher_client, corpus):
    html = researcher_client.get(reverse("corpora:corpus_detail", args=[corpus.pk])).content
    html = html.decode()
    # counts by relation and split, from the stored stats
    assert "xNeed" in html and "xWant" in html and "xAttr" in html
    for split in ("train", "val", "test"):
        assert f'<th class="num">{split}</th>' in html
    # samples read as sentences
    need = Relation.objects.get(name="xNeed")
    assert need.sentence("PersonX bakes bread", "flour") in html
    # the triple table and the export form
    assert 'id="triple-table"' in html
    assert "a fishing rod" in html
    assert f'action="{reverse("corpora:corpus_export", args=[corpus.pk])}"' in html


def test_corpus_detail_does_not_count_the_triple_table(researcher_client, corpus):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    url = reverse("corpora:corpus_detail", args=[corpus.pk])
    with CaptureQueriesContext(connection) as queries:
        assert researcher_client.get(url).status_code == 200
    table = Triple._meta.db_table
    counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper() and table in q["sql"]]
    assert counts == []


def test_htmx_request_returns_only_the_triple_table(researcher_client, corpus):
    url = reverse("corpora:corpus_detail", args=[corpus.pk])
    response = researcher_client.get(url, {"relation": "xNeed"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html
    assert html.strip().startswith('<div id="triple-table"')
    assert "a fishing rod" in html and "flour" in html
    assert "to eat fish" not in html
    assert "HX-Request" in response["Vary"]


def test_htmx_history_restore_gets_the_whole_page(researcher_client, corpus):
    url = reverse("corpora:corpus_detail", args=[corpus.pk])
    response = researcher_client.get(
        url, HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true"
    )
    assert "<html" in response.content.decode()


def test_keyset_pagination_pages_through_the_triples(researcher_client, big_corpus):
    url = reverse("corpora:corpus_detail", args=[big_corpus.pk])
    first = researcher_client.get(url).content.decode()
    assert "tail number 00" in first and "tail number 49" in first
    assert "tail number 50" not in first
    after = re.search(r'href="\?after=(\d+)#triples"', first).group(1)
    assert int(after) == Triple.objects.get(tail="tail number 49").pk

    second = researcher_client.get(url, {"after": after}, HTTP_HX_REQUEST="true").content
    second = second.decode()
    assert "tail number 50" in second and "tail number 59" in second
    assert "tail number 49" not in second
    assert 'rel="next"' not in second  # the last page
    assert "First page" in second


def test_head_search_filters_and_filters_stay_in_the_next_link(researcher_client, big_corpus):
    url = reverse("corpora:corpus_detail", args=[big_corpus.pk])
    html = researcher_client.get(url, {"q": "bakes cake"}, HTTP_HX_REQUEST="true").content
    shown = re.findall(r"tail number (\d\d)", html.decode())
    assert sorted(shown) == ["00", "10", "20", "30", "40", "50"]

    for i in range(60):  # enough rows for a second page of xNeed triples about running
        TripleFactory(corpus=big_corpus, head=EventFactory(text=f"PersonX runs {i}"))
    corpus_refresh_counts(corpus=big_corpus)
    html = researcher_client.get(url, {"q": "runs", "relation": "xNeed"}).content.decode()
    assert re.search(r'href="\?q=runs&amp;relation=xNeed&amp;after=\d+#triples"', html)


def test_an_unknown_filter_value_is_ignored(researcher_client, corpus):
    url = reverse("corpora:corpus_detail", args=[corpus.pk])
    for after in ("x", "-1", str(2**70)):
        response = researcher_client.get(url, {"relation": "nope", "after": after})
        assert response.status_code == 200
        assert "a fishing rod" in response.content.decode()


def test_upload_creates_a_job_and_the_worker_imports_it(researcher_client, researcher, settings):
    upload = SimpleUploadedFile("my corpus.jsonl", jsonl(ROWS), "application/octet-stream")
    response = researcher_client.post(
        reverse("corpora:corpus_import"),
        {"file": upload, "corpus_name": "uploaded", "format": "auto", "skip_invalid": "on"},
    )
    job = Job.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("jobs:job_detail", args=[job.pk])
    assert job.kind == "corpora.import"
    assert job.created_by == researcher
    assert job.params["corpus"] == "uploaded"
    assert job.params["format"] == "auto"
    assert job.params["skip_invalid"] is True
    saved = Path(job.params["path"])
    assert saved.name == "my_corpus.jsonl"
    assert saved.parent.parent == Path(settings.MEDIA_ROOT) / "uploads"
    assert saved.read_bytes() == jsonl(ROWS)

    corpus_import_job_run(job_id=job.pk)  # what the worker does

    corpus = Corpus.objects.get(name="uploaded")
    detail = researcher_client.get(reverse("corpora:corpus_detail", args=[corpus.pk]))
    assert "<dd>4</dd>" in detail.content.decode()
    page = researcher_client.get(reverse("jobs:job_detail", args=[job.pk])).content.decode()
    assert "Succeeded" in page
    assert re.search(r"<dt>Imported</dt><dd>4</dd>", page)
    assert re.search(r"<dt>Duplicates</dt><dd>0</dd>", page)
    assert reverse("corpora:corpus_detail", args=[corpus.pk]) in page
    assert "hx-trigger" not in page  # finished: no more polling


def test_upload_with_invalid_lines_offers_the_rejected_lines(researcher_client):
    rows = jsonl(ROWS) + b'{"head": "PersonX sings", "relation": "xNope", "tail": "loud"}\n'
    upload = SimpleUploadedFile("bad.jsonl", rows)
    researcher_client.post(
        reverse("corpora:corpus_import"),
        {"file": upload, "corpus_name": "partly", "format": "jsonl", "skip_invalid": "on"},
    )
    job = Job.objects.get()
    corpus_import_job_run(job_id=job.pk)
    page = researcher_client.get(reverse("jobs:job_detail", args=[job.pk])).content.decode()
    assert re.search(r"<dt>Rejected</dt><dd>1</dd>", page)
    assert "xNope" in page
    rejected_url = reverse("jobs:job_rejected", args=[job.pk])
    assert rejected_url in page
    response = researcher_client.get(rejected_url)
    assert response.status_code == 200
    assert b"xNope" in b"".join(response.streaming_content)


def test_a_failed_import_shows_its_error(researcher_client):
    upload = SimpleUploadedFile("bad.tsv", b"PersonX sings\txNope\tloud\n")
    researcher_client.post(
        reverse("corpora:corpus_import"),
        {"file": upload, "corpus_name": "broken", "format": "atomic-tsv"},
    )
    job = Job.objects.get()
    with pytest.raises(Exception, match="invalid line"):
        corpus_import_job_run(job_id=job.pk)
    page = researcher_client.get(reverse("jobs:job_detail", args=[job.pk])).content.decode()
    assert "Failed" in page
    assert "nothing was imported" in page
    assert "xNope" in page


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_upload_needs_a_valid_corpus_name(researcher_client, name):
    upload = SimpleUploadedFile("a.tsv", b"PersonX sings\txNeed\ta voice\n")
    response = researcher_client.post(
        reverse("corpora:corpus_import"),
        {"file": upload, "corpus_name": name, "format": "auto"},
    )
    assert response.status_code == 200
    assert 'class="errorlist"' in response.content.decode()
    assert not Job.objects.exists()


def test_import_page_offers_existing_corpus_names(researcher_client, corpus):
    html = researcher_client.get(reverse("corpora:corpus_import")).content.decode()
    assert '<option value="small">' in html


def test_export_job_then_download(researcher_client, researcher, corpus, settings):
    response = researcher_client.post(
        reverse("corpora:corpus_export", args=[corpus.pk]),
        {"format": "tsv", "relations": ["xNeed"], "split": "train", "min_score": ""},
    )
    job = Job.objects.get()
    assert response["Location"] == reverse("jobs:job_detail", args=[job.pk])
    assert job.kind == "corpora.export"
    assert job.created_by == researcher
    assert job.params["relations"] == ["xNeed"]
    assert job.params["split"] == "train"
    assert job.params["min_score"] is None
    out = Path(job.params["path"])
    assert out.name == "small.tsv"
    assert out.parent.parent == Path(settings.MEDIA_ROOT) / "exports"

    corpus_export_job_run(job_id=job.pk)

    page = researcher_client.get(reverse("jobs:job_detail", args=[job.pk])).content.decode()
    download_url = reverse("jobs:job_download", args=[job.pk])
    assert download_url in page
    download = researcher_client.get(download_url)
    assert download.status_code == 200
    assert 'attachment; filename="small.tsv"' in download["Content-Disposition"]
    body = b"".join(download.streaming_content).decode()
    assert body.splitlines() == [
        "PersonX goes fishing\txNeed\ta fishing rod",
        "PersonX bakes bread\txNeed\tflour",
    ]


def test_export_with_a_bad_format_shows_the_form_error(researcher_client, corpus):
    response = researcher_client.post(
        reverse("corpora:corpus_export", args=[corpus.pk]), {"format": "xlsx"}
    )
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not Job.objects.exists()


def test_relation_list_and_create(researcher_client):
    url = reverse("corpora:relation_list")
    html = researcher_client.get(url).content.decode()
    assert "xNeed" in html and "PersonX is seen as" in html and ">SKD<" in html

    response = researcher_client.post(
        url,
        {
            "name": "xHobby",
            "category": "social",
            "sentence_template": "{head}. PersonX enjoys: {tail}",
            "prompt_template": "{head}. PersonX enjoys",
            "verbalization": "PersonX enjoys",
        },
        follow=True,
    )
    assert Relation.objects.filter(name="xHobby").exists()
    assert "Relation xHobby added." in response.content.decode()
    assert "{head}. PersonX enjoys: {tail}" in response.content.decode()


def test_relation_create_shows_validation_errors_per_field(researcher_client):
    response = researcher_client.post(
        reverse("corpora:relation_list"),
        {
            "name": "xNeed",
            "sentence_template": "PersonX enjoys",
            "prompt_template": "{head}. PersonX enjoys",
            "verbalization": "enjoys",
        },
    )
    assert response.status_code == 200
    form = response.context["form"]
    assert "Must contain {head} and {tail}." in form.errors["sentence_template"]
    assert Relation.objects.filter(name="xNeed").count() == 1

    response = researcher_client.post(
        reverse("corpora:relation_list"),
        {
            "name": "xNeed",
            "sentence_template": "{head} {tail}",
            "prompt_template": "{head}",
            "verbalization": "needs",
        },
    )
    assert "already exists" in response.context["form"].errors["name"][0]


# --- Admin ---------------------------------------------------------------------------


@pytest.fixture
def admin_client_(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_admin_triple_changelist_renders_without_a_full_count(admin_client_, big_corpus):
    response = admin_client_.get(reverse("admin:corpora_triple_changelist"), {"split": "train"})
    assert response.status_code == 200
    assert "tail number 59" in response.content.decode()


def test_admin_corpus_delete_removes_its_triples(admin_client_, corpus):
    url = reverse("admin:corpora_corpus_delete", args=[corpus.pk])
    confirm = admin_client_.get(url)
    assert confirm.status_code == 200
    assert "4 triples" in confirm.content.decode()
    response = admin_client_.post(url, {"post": "yes"})
    assert response.status_code == 302
    assert not Corpus.objects.filter(pk=corpus.pk).exists()
    assert not Triple.objects.filter(corpus_id=corpus.pk).exists()


def test_admin_bulk_delete_uses_the_service(admin_client_, corpus):
    other = CorpusFactory()
    TripleFactory(corpus=other)
    response = admin_client_.post(
        reverse("admin:corpora_corpus_changelist"),
        {"action": "delete_selected", "_selected_action": [corpus.pk, other.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert not Corpus.objects.exists()
    assert not Triple.objects.exists()


def test_old_admin_links_of_corpus_models_redirect(admin_client_):
    response = admin_client_.get("/admin/generation/triple/?split=train")
    assert response.status_code == 301
    assert response["Location"] == "/admin/corpora/triple/?split=train"
    assert admin_client_.get(response["Location"]).status_code == 200
