"""Teachers, few-shot pools and generation runs through the researcher pages."""

import os
import re
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from corpora.models import Triple
from corpora.relations import SKD_RELATIONS
from generation.models import FewShotExample, FewShotPool, GenerationBatch, GenerationRun, Teacher
from generation.services.pools import pool_import_tsv
from generation.services.runs import run_create, run_job_run
from generation.services.teachers import teacher_create
from jobs.models import Job
from tests.factories import CorpusFactory, EventFactory, TripleFactory, UserFactory
from tests.generation.openai_server import OpenAIServer, ServerState

pytestmark = pytest.mark.django_db

HEADS = ["PersonX goes fishing", "PersonX bakes bread", "PersonX reads a book"]
UNREACHABLE = "http://127.0.0.1:9/v1"
POOL_TSV = (
    "PersonX goes hiking\txNeed\tboots\n"
    "PersonX goes hiking\txWant\tto rest\n"
    "PersonX paints a wall\txNeed\tpaint\n"
)


def teacher_fields(**overrides) -> dict:
    fields = {
        "name": "loopback",
        "backend": Teacher.Backend.OPENAI,
        "base_url": UNREACHABLE,
        "model": "m",
        "endpoint": Teacher.Endpoint.CHAT,
        "api_key_env": "",
        "concurrency": 4,
        "temperature": 0.9,
        "top_p": 1.0,
        "max_tokens": 32,
        "device": "",
        "dtype": "auto",
        "prompt_price_per_1k": "",
        "completion_price_per_1k": "",
    }
    return {**fields, **overrides}


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


@pytest.fixture
def pool(tmp_path) -> FewShotPool:
    path = tmp_path / "pool.tsv"
    path.write_text(POOL_TSV, encoding="utf-8")
    pool = FewShotPool.objects.create(name="refs")
    pool_import_tsv(pool=pool, path=path)
    return pool


@pytest.fixture
def teacher() -> Teacher:
    return teacher_create(name="offline", base_url=UNREACHABLE, model="m")


@pytest.fixture
def run(teacher, pool) -> GenerationRun:
    return run_create(
        teacher=teacher,
        pool=pool,
        corpus_name="generated",
        relations=["xNeed", "xWant"],
        heads=HEADS,
        n_per_pair=2,
        k_examples=2,
    )


def run_form(teacher: Teacher, pool: FewShotPool, **overrides) -> dict:
    fields = {
        "teacher": teacher.pk,
        "pool": pool.pk,
        "corpus_name": "generated",
        "relations": ["xNeed", "xWant"],
        "heads_from": "list",
        "heads": "\n".join(HEADS),
        "n_per_pair": 2,
        "k_examples": 2,
        "seed": 7,
    }
    return {**fields, **overrides}


def pages(run: GenerationRun) -> list[str]:
    return [
        reverse("generation:teacher_list"),
        reverse("generation:pool_list"),
        reverse("generation:pool_detail", args=[run.pool_id]),
        reverse("generation:run_list"),
        reverse("generation:run_create"),
        reverse("generation:run_detail", args=[run.pk]),
    ]


# --- Access --------------------------------------------------------------------------------


def test_every_page_renders_for_a_researcher_with_the_generation_nav_link(researcher_client, run):
    for url in pages(run):
        response = researcher_client.get(url)
        assert response.status_code == 200, url
        assert re.search(r'href="/corpora/runs/" aria-current="page">Generation<', response.text)


def test_annotators_are_refused_every_page_and_action(annotator_client, run):
    example = run.pool.examples.first()
    posts = [
        reverse("generation:teacher_check", args=[run.teacher_id]),
        reverse("generation:pool_example_delete", args=[run.pool_id, example.pk]),
        reverse("generation:run_start", args=[run.pk]),
    ]
    for url in pages(run):
        assert annotator_client.get(url).status_code == 403, url
    for url in [*posts, *pages(run)]:
        assert annotator_client.post(url, {}).status_code == 403, url
    assert not Job.objects.exists()
    assert FewShotExample.objects.filter(pk=example.pk).exists()


def test_anonymous_users_are_sent_to_login(client, run):
    for url in pages(run):
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response["Location"], url


# --- Teachers ------------------------------------------------------------------------------


def test_a_researcher_adds_a_teacher_and_checks_it_without_the_key_ever_shown(
    researcher_client, monkeypatch
):
    monkeypatch.setenv("LOOPBACK_TEACHER_KEY", "very-secret-key-123")
    with OpenAIServer(ServerState(require_key="very-secret-key-123")) as server:
        response = researcher_client.post(
            reverse("generation:teacher_list"),
            teacher_fields(base_url=server.url, api_key_env="LOOPBACK_TEACHER_KEY"),
            follow=True,
        )
        assert "Teacher loopback saved" in messages_of(response)[0]
        teacher = Teacher.objects.get(name="loopback")
        assert teacher.api_key_env == "LOOPBACK_TEACHER_KEY"
        assert server.url in response.text and "LOOPBACK_TEACHER_KEY" in response.text

        checked = researcher_client.post(
            reverse("generation:teacher_check", args=[teacher.pk]), follow=True
        )
    assert messages_of(checked) == [
        "Teacher loopback answered a test completion of model 'm' at "
        f"{server.url}/chat/completions."
    ]
    assert server.state.requests["check"] == 1  # one real request of the endpoint
    assert "very-secret-key-123" not in response.text + checked.text


def test_a_base_url_without_v1_or_an_unknown_model_fails_the_check(researcher_client):
    """A 404 is no answer: the check names the URL and says what usually causes it."""
    with OpenAIServer(ServerState(models={"served-model"})) as server:
        no_v1 = teacher_create(
            name="no-v1", base_url=server.url.removesuffix("/v1"), model="served-model"
        )
        wrong_model = teacher_create(name="wrong-model", base_url=server.url, model="m")
        right = teacher_create(name="right", base_url=server.url, model="served-model")
        said = {}
        for teacher in (no_v1, wrong_model, right):
            response = researcher_client.post(
                reverse("generation:teacher_check", args=[teacher.pk]), follow=True
            )
            said[teacher.name] = messages_of(response)[0]
    assert "answered HTTP 404" in said["no-v1"] and "ends in /v1" in said["no-v1"]
    assert "The model 'm' does not exist" in said["wrong-model"]
    assert said["right"].startswith("Teacher right answered a test completion")


def test_checking_an_unreachable_teacher_says_it_cannot_be_reached(researcher_client, teacher):
    response = researcher_client.post(
        reverse("generation:teacher_check", args=[teacher.pk]), follow=True
    )
    [message] = messages_of(response)
    assert "Teacher 'offline': cannot reach the teacher at http://127.0.0.1:9/v1" in message
    assert 'class="message error"' in response.text


def test_a_key_typed_where_its_variable_name_belongs_is_refused_and_not_echoed(
    researcher_client,
):
    response = researcher_client.post(
        reverse("generation:teacher_list"), teacher_fields(api_key_env="sk-proj-abcDEF123456")
    )
    assert response.status_code == 200
    assert "never the key itself" in response.context["form"].errors["api_key_env"][0]
    assert "sk-proj-abcDEF123456" not in response.text
    assert not Teacher.objects.exists()


def test_an_http_teacher_needs_a_base_url(researcher_client):
    response = researcher_client.post(
        reverse("generation:teacher_list"), teacher_fields(base_url="")
    )
    assert "needs a base URL" in response.context["form"].errors["base_url"][0]
    assert not Teacher.objects.exists()


@pytest.fixture
def tiny_gpt2_folder(tmp_path):
    """A tiny GPT-2's config and tokenizer (weights are not needed by the check)."""
    from transformers import AutoTokenizer, GPT2Config

    from critic.ml.encoder import resolve_encoder_path

    tokenizer = AutoTokenizer.from_pretrained(resolve_encoder_path("all-MiniLM-L6-v2"))
    GPT2Config(
        vocab_size=tokenizer.vocab_size, n_positions=256, n_embd=32, n_layer=2
    ).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    return tmp_path


def test_checking_a_transformers_teacher_loads_its_tokenizer_and_config(
    researcher_client, tiny_gpt2_folder
):
    teacher = teacher_create(
        name="local", backend=Teacher.Backend.TRANSFORMERS, model=str(tiny_gpt2_folder)
    )
    response = researcher_client.post(
        reverse("generation:teacher_check", args=[teacher.pk]), follow=True
    )
    [message] = messages_of(response)
    assert "loaded the tokenizer (30,522 tokens) and config" in message
    assert "a context of 256 tokens" in message
    assert "weights are loaded by the worker when a run starts" in message
    assert 'class="message success"' in response.text

    missing = teacher_create(
        name="missing", backend=Teacher.Backend.TRANSFORMERS, model=str(tiny_gpt2_folder / "no")
    )
    response = researcher_client.post(
        reverse("generation:teacher_check", args=[missing.pk]), follow=True
    )
    [message] = messages_of(response)
    assert "Teacher 'missing': cannot load the tokenizer and config" in message
    assert 'class="message error"' in response.text


# --- Few-shot pools ------------------------------------------------------------------------


def test_a_researcher_creates_a_pool_and_pastes_examples_and_seed_events(researcher_client):
    created = researcher_client.post(
        reverse("generation:pool_list"), {"name": "mine", "description": "hand-picked"}, follow=True
    )
    pool = FewShotPool.objects.get(name="mine")
    pool_url = reverse("generation:pool_detail", args=[pool.pk])
    assert created.redirect_chain[-1][0] == pool_url
    assert "This pool is empty" in created.text and "hand-picked" in created.text

    pasted = (
        "PersonX goes fishing\txNeed\ta fishing rod\r\n"
        "\n"
        "PersonX goes fishing\txWant\tnone\n"
        "PersonX climbs a hill\n"
    )
    response = researcher_client.post(pool_url, {"text": pasted}, follow=True)
    assert messages_of(response) == ["3 new examples and seed events added."]
    assert set(pool.examples.values_list("head", "relation__name", "tail")) == {
        ("PersonX goes fishing", "xNeed", "a fishing rod"),
        ("PersonX goes fishing", None, ""),
        ("PersonX climbs a hill", None, ""),
    }
    page = response.text
    assert "Seed events" in page and "PersonX climbs a hill" in page
    assert "<h2>xNeed</h2>" in page and "a fishing rod" in page

    listed = researcher_client.get(reverse("generation:pool_list"))
    [row] = listed.context["pools"]
    assert (row.seed_count, row.example_count) == (2, 1)


def test_bad_pasted_lines_are_named_and_nothing_is_added(researcher_client, pool):
    before = pool.examples.count()
    response = researcher_client.post(
        reverse("generation:pool_detail", args=[pool.pk]),
        {
            "text": "PersonX sings\txNeed\ta voice\n"
            "PersonX sings\txNeed\n"
            "PersonX sings\txNeeds\ta song\n"
            "\txWant\tto rest\n"
        },
    )
    assert response.status_code == 200
    errors = response.context["form"].errors["text"]
    assert errors[0].startswith("line 2: expected head<TAB>relation<TAB>tail")
    assert "line 3: unknown relation 'xNeeds'" in errors
    assert "line 4: the head is empty" in errors
    assert pool.examples.count() == before


def test_an_uploaded_tsv_file_adds_examples(researcher_client, pool):
    upload = SimpleUploadedFile(
        "more.tsv", "\ufeffPersonX swims\txEffect\tgets wet\n".encode(), "text/tab-separated-values"
    )
    response = researcher_client.post(
        reverse("generation:pool_detail", args=[pool.pk]), {"file": upload}, follow=True
    )
    assert messages_of(response) == ["2 new examples and seed events added."]
    assert pool.examples.filter(head="PersonX swims", relation__name="xEffect").exists()


def test_an_uploaded_file_that_is_not_utf8_names_the_line(researcher_client, pool):
    upload = SimpleUploadedFile("bad.tsv", b"PersonX swims\n\xff\xfe oops\n")
    response = researcher_client.post(
        reverse("generation:pool_detail", args=[pool.pk]), {"file": upload}
    )
    assert response.context["form"].errors["file"] == ["line 2: not UTF-8 text"]


def test_an_empty_examples_form_asks_for_lines(researcher_client, pool):
    response = researcher_client.post(
        reverse("generation:pool_detail", args=[pool.pk]), {"text": "  \n"}
    )
    assert "Paste some lines or choose a file." in response.context["form"].non_field_errors()


def test_a_single_example_is_deleted(researcher_client, pool):
    example = pool.examples.get(relation__name="xWant")
    response = researcher_client.post(
        reverse("generation:pool_example_delete", args=[pool.pk, example.pk]), follow=True
    )
    assert response.redirect_chain[-1][0] == reverse("generation:pool_detail", args=[pool.pk])
    assert not FewShotExample.objects.filter(pk=example.pk).exists()
    assert pool.examples.count() == 4
    other_pool = FewShotPool.objects.create(name="other")
    wrong = researcher_client.post(
        reverse("generation:pool_example_delete", args=[other_pool.pk, pool.examples.first().pk])
    )
    assert wrong.status_code == 404


# --- Runs ----------------------------------------------------------------------------------


def test_the_new_run_form_checks_the_skd_relations_at_first(researcher_client, teacher, pool):
    response = researcher_client.get(reverse("generation:run_create"))
    checked = set(
        re.findall(r'<input[^>]*name="relations" value="(\w+)"[^>]*checked', response.text)
    )
    assert checked == set(SKD_RELATIONS)
    assert 'value="oEffect"' in response.text


def test_create_estimate_start_and_execute_a_run_through_the_pages(researcher_client, pool):
    with OpenAIServer() as server:
        researcher_client.post(
            reverse("generation:teacher_list"),
            teacher_fields(
                base_url=server.url, prompt_price_per_1k="0.5", completion_price_per_1k="1.5"
            ),
        )
        teacher = Teacher.objects.get(name="loopback")
        created = researcher_client.post(
            reverse("generation:run_create"), run_form(teacher, pool), follow=True
        )
        run = GenerationRun.objects.get()
        assert created.redirect_chain[-1][0] == reverse("generation:run_detail", args=[run.pk])
        assert run.batches.count() == 6 and run.seed == 7 and run.temperature == 0.9
        assert created.context["estimate"].requests == 6
        assert created.context["estimate"].cost is not None
        page = created.text
        assert "Estimate of what is left" in page and "about $" in page
        assert re.search(r"<dt>Requests</dt><dd>6</dd>", page)
        assert ">Start</button>" in page

        started = researcher_client.post(reverse("generation:run_start", args=[run.pk]))
        job = Job.objects.get()
        # Starting lands on the run's own page, not the generic job page.
        assert started["Location"] == reverse("generation:run_detail", args=[run.pk])
        run.refresh_from_db()
        assert run.job == job and job.status == Job.Status.QUEUED

        queued = researcher_client.get(reverse("generation:run_detail", args=[run.pk]))
        assert "hx-trigger" in queued.text and "Start</button>" not in queued.text

        run_job_run(job_id=job.pk)

    done = researcher_client.get(reverse("generation:run_detail", args=[run.pk]))
    assert Triple.objects.filter(corpus=run.corpus).count() == 12
    assert done.context["report"]["triples"] == 12
    assert re.search(r"<dt>Triples written</dt><dd>12</dd>", done.text)
    assert re.search(r"<dt>Batches done</dt><dd>6</dd>", done.text)
    assert "Nothing left to send." in done.text and "Start</button>" not in done.text
    assert "hx-trigger" not in done.text

    again = researcher_client.post(reverse("generation:run_start", args=[run.pk]), follow=True)
    assert messages_of(again) == [f"Run {run.pk} is finished: every batch is done."]
    assert Job.objects.count() == 1

    listed = researcher_client.get(reverse("generation:run_list"))
    assert f"Run {run.pk}" in listed.text and "generated" in listed.text


def test_a_run_whose_job_failed_can_be_started_again_and_continues(researcher_client, run):
    job = Job.objects.create(kind="generation.run", status=Job.Status.FAILED, error="worker died")
    GenerationRun.objects.filter(pk=run.pk).update(job=job)
    run.batches.filter(head=HEADS[0]).update(status=GenerationBatch.Status.DONE)

    page = researcher_client.get(reverse("generation:run_detail", args=[run.pk]))
    assert ">Start again</button>" in page.text and "worker died" in page.text
    assert page.context["batches_done"] == 2 and page.context["batches_pending"] == 4

    response = researcher_client.post(reverse("generation:run_start", args=[run.pk]))
    run.refresh_from_db()
    assert run.job_id != job.pk and run.job.status == Job.Status.QUEUED
    assert response["Location"] == reverse("generation:run_detail", args=[run.pk])

    twice = researcher_client.post(reverse("generation:run_start", args=[run.pk]), follow=True)
    assert "is already under way" in messages_of(twice)[-1]
    assert Job.objects.count() == 2


def test_a_finished_run_with_failed_batches_offers_start_again(researcher_client, run):
    job = Job.objects.create(kind="generation.run", status=Job.Status.SUCCEEDED)
    GenerationRun.objects.filter(pk=run.pk).update(job=job, errors=1)
    run.batches.update(status=GenerationBatch.Status.DONE)
    run.batches.filter(pk=run.batches.first().pk).update(
        status=GenerationBatch.Status.FAILED, error="HTTP 500 from the teacher"
    )
    page = researcher_client.get(reverse("generation:run_detail", args=[run.pk]))
    assert ">Start again</button>" in page.text
    assert "HTTP 500 from the teacher" in page.text


def test_htmx_polls_get_only_the_live_fragment(researcher_client, run):
    response = researcher_client.get(
        reverse("generation:run_detail", args=[run.pk]), headers={"HX-Request": "true"}
    )
    assert response.text.lstrip().startswith('<div id="run-live"')
    assert "<html" not in response.text and "Settings" not in response.text
    assert "HX-Request" in response["Vary"]


def test_the_run_form_needs_heads(researcher_client, teacher, pool):
    response = researcher_client.post(
        reverse("generation:run_create"), run_form(teacher, pool, heads=" \n")
    )
    assert response.context["form"].errors["heads"] == ["List at least one head."]
    assert not GenerationRun.objects.exists()


def test_a_teacher_whose_key_variable_is_unset_is_reported_on_the_form(
    researcher_client, pool, monkeypatch
):
    monkeypatch.delenv("UNSET_TEACHER_KEY", raising=False)
    teacher = teacher_create(
        name="keyed", base_url=UNREACHABLE, model="m", api_key_env="UNSET_TEACHER_KEY"
    )
    response = researcher_client.post(reverse("generation:run_create"), run_form(teacher, pool))
    [error] = response.context["form"].non_field_errors()
    assert "UNSET_TEACHER_KEY" in error and "is not set" in error
    assert not GenerationRun.objects.exists()


def test_heads_can_come_from_a_corpus_or_from_new_events(researcher_client, teacher, pool):
    source = CorpusFactory(name="source")
    for head in HEADS[:2]:
        TripleFactory(corpus=source, head=EventFactory(text=head))
    researcher_client.post(
        reverse("generation:run_create"),
        run_form(teacher, pool, heads_from="corpus", source_corpus=source.pk, heads="ignored"),
    )
    from_corpus = GenerationRun.objects.get()
    assert set(from_corpus.batches.values_list("head", flat=True)) == set(HEADS[:2])

    researcher_client.post(
        reverse("generation:run_create"),
        run_form(teacher, pool, heads_from="events", event_prompts=3, corpus_name="events"),
    )
    events = GenerationRun.objects.get(corpus__name="events")
    assert events.mode == GenerationRun.Mode.EVENTS and events.event_prompts == 3
    assert events.batches.filter(relation__isnull=True).count() == 3

    missing = researcher_client.post(
        reverse("generation:run_create"), run_form(teacher, pool, heads_from="events")
    )
    assert "event_prompts" in missing.context["form"].errors


# --- Admin ---------------------------------------------------------------------------------


def test_the_admin_lists_teachers_pools_examples_runs_and_batches(client, run):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    for model in ("teacher", "fewshotpool", "fewshotexample", "generationrun", "generationbatch"):
        response = client.get(reverse(f"admin:generation_{model}_changelist"))
        assert response.status_code == 200, model
    teacher_page = client.get(reverse("admin:generation_teacher_change", args=[run.teacher_id]))
    assert teacher_page.status_code == 200 and "api_key_env" in teacher_page.text


def test_a_running_run_shows_its_rate_and_time_left(transactional_db, client, researcher, pool):
    """A run executing as a job (in a thread here, against a slow server): its page says how
    far it is, how fast it goes and how long is left, and polls for more."""
    import threading

    client.force_login(researcher)
    with OpenAIServer(ServerState(delay=0.4)) as server:
        teacher = teacher_create(name="slow", base_url=server.url, model="m", concurrency=1)
        run = run_create(
            teacher=teacher, pool=pool, corpus_name="slow", relations=["xNeed"], heads=HEADS
        )
        client.post(reverse("generation:run_start", args=[run.pk]))
        job = Job.objects.get()
        worker = threading.Thread(target=run_job_run, kwargs={"job_id": job.pk})
        worker.start()
        try:
            seen = ""
            for _ in range(200):
                page = client.get(reverse("generation:run_detail", args=[run.pk])).text
                found = re.search(r'<p class="small" id="run-rate">([^<]*)</p>', page)
                seen = found.group(1) if found else seen
                if "batches done" in seen:
                    break
                time.sleep(0.05)
        finally:
            worker.join(60)
    assert re.fullmatch(
        r"\d of 3 batches done · [\d.]+ a second · (under a minute|about \d+ min) left · "
        r"0 failed",
        seen,
    ), seen
    assert "hx-trigger" in page


def test_a_run_executed_from_the_command_line_says_by_whom_and_cannot_be_started(
    researcher_client, run
):
    from generation.services.leases import run_lease_take

    run_lease_take(run=run)  # as `generate --resume` does
    page = researcher_client.get(reverse("generation:run_detail", args=[run.pk]))
    assert f"is being executed by process {os.getpid()}" in page.text
    assert ">Start</button>" not in page.text and "hx-trigger" in page.text
    refused = researcher_client.post(reverse("generation:run_start", args=[run.pk]), follow=True)
    assert "is being executed by process" in messages_of(refused)[0]
    assert not Job.objects.exists()


def test_the_job_page_of_a_finished_run_speaks_plainly_and_links_the_run_and_corpus(
    researcher_client, pool
):
    with OpenAIServer() as server:
        teacher = teacher_create(name="loopback", base_url=server.url, model="m")
        made = run_create(
            teacher=teacher, pool=pool, corpus_name="plain", relations=["xNeed"], heads=HEADS
        )
        researcher_client.post(reverse("generation:run_start", args=[made.pk]))
        job = Job.objects.get()
        run_job_run(job_id=job.pk)
    page = researcher_client.get(reverse("jobs:job_detail", args=[job.pk])).text
    assert re.search(r"<dt>Triples written</dt><dd>15</dd>", page)
    assert "the teacher has no prices" in page
    assert reverse("generation:run_detail", args=[made.pk]) in page
    assert reverse("corpora:corpus_detail", args=[made.corpus_id]) in page
    assert "{'" not in page and "None" not in page
