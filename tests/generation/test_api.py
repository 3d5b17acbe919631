"""Teachers, few-shot pools and generation runs through the API."""

import pytest
from rest_framework.test import APIClient

from corpora.models import Triple
from corpora.relations import SKD_RELATIONS
from generation.models import FewShotPool, GenerationBatch, GenerationRun, Teacher
from generation.services.runs import run_create, run_job_run
from generation.services.teachers import teacher_create
from jobs.models import Job
from tests.generation.openai_server import OpenAIServer, ServerState

pytestmark = pytest.mark.django_db

HEADS = ["PersonX goes fishing", "PersonX bakes bread", "PersonX reads a book"]
UNREACHABLE = "http://127.0.0.1:9/v1"
POOL_TSV = "PersonX goes hiking\txNeed\tboots\nPersonX goes hiking\txWant\tto rest\n"


@pytest.fixture
def api(researcher) -> APIClient:
    client = APIClient()
    client.force_authenticate(researcher)
    return client


@pytest.fixture
def pool(api) -> FewShotPool:
    pool = FewShotPool.objects.create(name="refs")
    api.post(f"/api/pools/{pool.pk}/examples/", {"tsv": POOL_TSV}, format="json")
    return pool


@pytest.fixture
def teacher() -> Teacher:
    return teacher_create(name="offline", base_url=UNREACHABLE, model="m")


def run_body(teacher: Teacher, pool: FewShotPool, **overrides) -> dict:
    body = {
        "teacher": teacher.pk,
        "pool": pool.pk,
        "corpus": "generated",
        "relations": ["xNeed", "xWant"],
        "heads": HEADS,
        "n_per_pair": 2,
        "k_examples": 2,
    }
    return {**body, **overrides}


def test_create_list_and_check_a_teacher_whose_key_stays_in_the_environment(api, monkeypatch):
    monkeypatch.setenv("LOOPBACK_TEACHER_KEY", "very-secret-key-123")
    with OpenAIServer(ServerState(require_key="very-secret-key-123")) as server:
        created = api.post(
            "/api/teachers/",
            {
                "name": "loopback",
                "base_url": server.url,
                "model": "m",
                "api_key_env": "LOOPBACK_TEACHER_KEY",
                "prompt_price_per_1k": "0.5",
                "completion_price_per_1k": "1.5",
            },
            format="json",
        )
        assert created.status_code == 201, created.json()
        teacher = created.json()
        assert teacher["api_key_env"] == "LOOPBACK_TEACHER_KEY"
        assert teacher["backend"] == "openai-compatible" and teacher["temperature"] == 0.9
        # The limits a run keeps to, at their defaults.
        assert (teacher["timeout"], teacher["max_answer_mb"], teacher["give_up_after"]) == (
            60.0,
            4.0,
            20,
        )
        checked = api.post(f"/api/teachers/{teacher['id']}/check/")
    assert checked.status_code == 200
    assert checked.json() == {
        "ok": True,
        "detail": "Teacher loopback answered a test completion of model 'm' at "
        f"{server.url}/chat/completions.",
    }
    listed = api.get("/api/teachers/")
    assert [t["name"] for t in listed.json()] == ["loopback"]
    assert "very-secret-key-123" not in created.content.decode() + listed.content.decode()


def test_checking_an_unreachable_teacher_reports_why(api, teacher):
    checked = api.post(f"/api/teachers/{teacher.pk}/check/").json()
    assert checked["ok"] is False
    assert "cannot reach the teacher at http://127.0.0.1:9/v1" in checked["detail"]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"api_key_env": "sk-proj-abcDEF123456"}, "api_key_env", "never the key itself"),
        ({"base_url": ""}, "base_url", "needs a base URL"),
        ({"name": "offline"}, "name", "already exists"),
        ({"timeout": 0}, "timeout", "greater than or equal to 0.1"),
        ({"max_answer_mb": 5000}, "max_answer_mb", "less than or equal to 1024"),
    ],
)
def test_bad_teachers_are_refused_with_the_field_named(api, teacher, body, field, words):
    response = api.post(
        "/api/teachers/", {"name": "new", "base_url": UNREACHABLE, "model": "m", **body}
    )
    assert response.status_code == 400
    assert words in response.json()[field][0]
    assert "sk-proj-abcDEF123456" not in response.content.decode()


def test_create_a_pool_and_add_examples_as_tsv_text(api):
    created = api.post("/api/pools/", {"name": "mine"}, format="json")
    assert created.status_code == 201
    pool = created.json()
    assert (pool["seed_events"], pool["examples"]) == (0, 0)
    added = api.post(
        f"/api/pools/{pool['id']}/examples/",
        {"tsv": "PersonX swims\txEffect\tgets wet\nPersonX swims\txNeed\tnone\nPersonX runs\n"},
        format="json",
    )
    assert added.status_code == 201
    assert added.json()["added"] == 3
    assert (added.json()["pool"]["seed_events"], added.json()["pool"]["examples"]) == (2, 1)
    assert [p["name"] for p in api.get("/api/pools/").json()] == ["mine"]


def test_bad_tsv_lines_are_named_and_nothing_is_added(api, pool):
    before = pool.examples.count()
    response = api.post(
        f"/api/pools/{pool.pk}/examples/",
        {"tsv": "PersonX swims\txEffect\tgets wet\nPersonX swims\tnoSuchRelation\tx\n"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json() == {"tsv": ["line 2: unknown relation 'noSuchRelation'"]}
    assert pool.examples.count() == before


def test_create_estimate_start_and_report_a_run(api, pool):
    with OpenAIServer() as server:
        teacher = teacher_create(
            name="loopback",
            base_url=server.url,
            model="m",
            prompt_price_per_1k=0.5,
            completion_price_per_1k=1.5,
        )
        created = api.post("/api/runs/", run_body(teacher, pool, seed=3), format="json")
        assert created.status_code == 201, created.json()
        run = created.json()
        assert run["relations"] == ["xNeed", "xWant"] and run["seed"] == 3
        assert run["mode"] == "inferences" and run["job"] is None and run["job_status"] is None
        assert run["estimate"]["requests"] == 6 and run["estimate"]["cost"] > 0
        assert run["report"]["batches"] == {"pending": 6}

        started = api.post(f"/api/runs/{run['id']}/start/")
        assert started.status_code == 202
        job = started.json()
        assert job["kind"] == "generation.run" and job["status"] == "queued"
        assert api.post(f"/api/runs/{run['id']}/start/").status_code == 409

        run_job_run(job_id=job["id"])

    detail = api.get(f"/api/runs/{run['id']}/").json()
    assert detail["job"] == job["id"] and detail["job_status"] == "succeeded"
    assert detail["report"]["triples"] == 12 and detail["report"]["batches"] == {"done": 6}
    assert detail["report"]["prompt_tokens"] > 0 and detail["estimate"]["requests"] == 0
    assert Triple.objects.filter(corpus_id=detail["corpus"]).count() == 12
    finished = api.post(f"/api/runs/{run['id']}/start/")
    assert finished.status_code == 409 and "finished" in finished.json()["detail"]
    assert [r["id"] for r in api.get("/api/runs/").json()] == [run["id"]]
    assert Job.objects.get(pk=job["id"]).status == Job.Status.SUCCEEDED


def test_a_run_whose_job_failed_starts_again(api, teacher, pool):
    run = run_create(teacher=teacher, pool=pool, corpus_name="c", relations=["xNeed"], heads=HEADS)
    job = Job.objects.create(kind="generation.run", status=Job.Status.FAILED)
    GenerationRun.objects.filter(pk=run.pk).update(job=job)
    run.batches.filter(head=HEADS[0]).update(status=GenerationBatch.Status.DONE)
    started = api.post(f"/api/runs/{run.pk}/start/")
    assert started.status_code == 202 and started.json()["id"] != job.pk
    run.refresh_from_db()
    assert run.job_id == started.json()["id"]


def test_the_skd_relations_are_used_when_none_are_named(api, teacher, pool):
    body = run_body(teacher, pool)
    del body["relations"]
    created = api.post("/api/runs/", body, format="json").json()
    assert sorted(created["relations"]) == sorted(SKD_RELATIONS)
    assert created["estimate"]["requests"] == len(HEADS) * len(SKD_RELATIONS)


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"heads": []}, "A run needs heads"),
        ({"relations": ["xNeed", "noSuchRelation"]}, "Unknown relation(s): noSuchRelation"),
    ],
)
def test_runs_that_cannot_be_made_are_a_clear_400(api, teacher, pool, overrides, words):
    response = api.post("/api/runs/", run_body(teacher, pool, **overrides), format="json")
    assert response.status_code == 400
    assert words in response.json()["detail"]
    assert not GenerationRun.objects.exists()


def test_new_events_mode_through_the_api(api, teacher, pool):
    created = api.post(
        "/api/runs/", run_body(teacher, pool, heads=[], event_prompts=2), format="json"
    ).json()
    assert created["mode"] == "events" and created["event_prompts"] == 2
    assert created["report"]["batches"] == {"pending": 2}


def test_annotators_and_anonymous_users_are_refused(annotator, teacher, pool):
    run = run_create(teacher=teacher, pool=pool, corpus_name="c", relations=["xNeed"], heads=HEADS)
    calls = [
        ("get", "/api/teachers/"),
        ("post", "/api/teachers/"),
        ("post", f"/api/teachers/{teacher.pk}/check/"),
        ("get", "/api/pools/"),
        ("post", "/api/pools/"),
        ("post", f"/api/pools/{pool.pk}/examples/"),
        ("get", "/api/runs/"),
        ("post", "/api/runs/"),
        ("get", f"/api/runs/{run.pk}/"),
        ("post", f"/api/runs/{run.pk}/start/"),
    ]
    client = APIClient()
    for method, url in calls:
        assert getattr(client, method)(url).status_code in (401, 403), url
    client.force_authenticate(annotator)
    for method, url in calls:
        assert getattr(client, method)(url).status_code == 403, url
    assert not Job.objects.exists()
