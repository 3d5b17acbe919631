import orjson
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from corpora.models import Corpus, Relation
from corpora.scores import score_set_write
from corpora.services import corpus_export_job_run, corpus_import, corpus_import_job_run
from jobs.models import Job

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(researcher):
    client = APIClient()
    client.force_authenticate(researcher)
    return client


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "c.jsonl"
    rows = [
        {"head": "PersonX goes fishing", "relation": "xNeed", "tail": "a rod", "split": "train"},
        {"head": "PersonX goes fishing", "relation": "xWant", "tail": "to eat", "split": "test"},
        {"head": "PersonX bakes bread", "relation": "xNeed", "tail": "flour", "split": "train"},
        {"head": "PersonX bakes bread", "relation": "xAttr", "tail": "skilled", "split": "val"},
    ]
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    corpus_import(path=path, corpus_name="api")
    return Corpus.objects.get(name="api")


def test_corpus_list_and_detail(api, corpus):
    listed = api.get("/api/corpora/").json()
    assert [c["name"] for c in listed] == ["api"]
    detail = api.get(f"/api/corpora/{corpus.pk}/").json()
    assert detail["triple_count"] == 4
    assert detail["stats"]["by_relation"]["xNeed"] == {"train": 2}


def test_create_corpus_and_duplicate_name_is_a_clear_400(api):
    assert api.post("/api/corpora/", {"name": "fresh"}, format="json").status_code == 201
    again = api.post("/api/corpora/", {"name": "fresh"}, format="json")
    assert again.status_code == 400
    assert "name" in again.json()


def test_triples_filter_by_relation_split_head_and_score(api, corpus):
    url = f"/api/corpora/{corpus.pk}/triples/"
    assert [t["tail"] for t in api.get(url, {"relation": "xNeed"}).json()["results"]] == [
        "a rod",
        "flour",
    ]
    assert [t["tail"] for t in api.get(url, {"split": "test"}).json()["results"]] == ["to eat"]
    assert [t["tail"] for t in api.get(url, {"head": "bread"}).json()["results"]] == [
        "flour",
        "skilled",
    ]
    tails = dict(corpus.triple_set.values_list("tail", "pk"))
    score_set_write(corpus=corpus, scores={tails["flour"]: 0.8, tails["a rod"]: 0.3})
    got = api.get(url, {"min_score": 0.5}).json()["results"]
    assert [(t["tail"], t["score"]) for t in got] == [("flour", 0.8)]
    got = api.get(url, {"max_score": 0.5}).json()["results"]
    assert [t["tail"] for t in got] == ["a rod"]


def test_triples_cursor_pagination_walks_every_row_once(api, corpus):
    url = f"/api/corpora/{corpus.pk}/triples/?page_size=3"
    first = api.get(url).json()
    second = api.get(first["next"]).json()
    tails = [t["tail"] for t in first["results"] + second["results"]]
    assert tails == ["a rod", "to eat", "flour", "skilled"]
    assert second["next"] is None


def test_import_through_the_api_is_a_job(api, researcher):
    upload = SimpleUploadedFile("up.tsv", b"PersonX naps\txNeed\ta bed\n")
    response = api.post("/api/imports/", {"file": upload, "corpus": "uploaded"}, format="multipart")
    assert response.status_code == 202
    job = Job.objects.get(pk=response.json()["id"])
    assert job.params["corpus"] == "uploaded"
    assert job.created_by == researcher
    corpus_import_job_run(job_id=job.pk)  # what the worker does
    body = api.get(f"/api/jobs/{job.pk}/").json()
    assert body["status"] == "succeeded"
    assert body["result"]["imported"] == 1
    assert Corpus.objects.get(name="uploaded").triple_count == 1


def test_export_through_the_api_then_download(api, corpus):
    response = api.post(
        f"/api/corpora/{corpus.pk}/exports/",
        {"format": "tsv", "relations": ["xNeed"]},
        format="json",
    )
    assert response.status_code == 202
    job_id = response.json()["id"]
    corpus_export_job_run(job_id=job_id)
    body = api.get(f"/api/jobs/{job_id}/").json()
    assert body["status"] == "succeeded"
    download = api.get(body["download"])
    assert download.status_code == 200
    content = b"".join(download.streaming_content).decode()
    assert content == "PersonX goes fishing\txNeed\ta rod\nPersonX bakes bread\txNeed\tflour\n"


def test_export_with_unknown_relation_is_a_400_naming_it(api, corpus):
    response = api.post(
        f"/api/corpora/{corpus.pk}/exports/", {"relations": ["xFly"]}, format="json"
    )
    assert response.status_code == 400
    assert "xFly" in str(response.json())


def test_relations_list_and_create(api):
    names = [r["name"] for r in api.get("/api/relations/").json()]
    assert {"xNeed", "HinderedBy", "ObjectUse"} <= set(names)
    assert len(names) == 23
    response = api.post(
        "/api/relations/",
        {
            "name": "xHope",
            "sentence_template": "{head}. PersonX hopes: {tail}",
            "prompt_template": "{head}. PersonX hopes",
            "verbalization": "PersonX hopes",
        },
        format="json",
    )
    assert response.status_code == 201
    assert Relation.objects.filter(name="xHope", is_builtin=False).exists()
    bad = api.post(
        "/api/relations/",
        {
            "name": "xBad",
            "sentence_template": "no placeholders",
            "prompt_template": "{head}",
            "verbalization": "x",
        },
        format="json",
    )
    assert bad.status_code == 400
    assert "sentence_template" in bad.json()


def test_annotators_get_403_everywhere_in_the_api(annotator, corpus):
    client = APIClient()
    client.force_authenticate(annotator)
    for url in [
        "/api/corpora/",
        f"/api/corpora/{corpus.pk}/",
        f"/api/corpora/{corpus.pk}/triples/",
        "/api/relations/",
        "/api/jobs/1/",
    ]:
        assert client.get(url).status_code == 403, url
    assert client.post("/api/imports/", {}).status_code == 403


def test_anonymous_gets_401_or_403(corpus):
    assert APIClient().get("/api/corpora/").status_code in (401, 403)


def test_token_authentication(researcher, corpus):
    token = Token.objects.create(user=researcher)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.get("/api/corpora/").status_code == 200


def test_openapi_schema_and_docs_are_served_locally(researcher_client):
    schema = researcher_client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/corpora/{id}/triples/" in schema.content
    docs = researcher_client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger-ui" in html
    assert "cdn" not in html.lower() and "unpkg" not in html.lower()
