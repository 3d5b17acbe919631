"""Generation runs end to end against a real loopback OpenAI-compatible server."""

import pytest

from corpora.models import Triple
from generation.errors import GenerationError
from generation.ml.http_teacher import TeacherError
from generation.models import FewShotPool, GenerationBatch, Teacher
from generation.services.execution import run_execute
from generation.services.pools import pool_import_tsv
from generation.services.runs import run_create, run_estimate
from generation.services.teachers import teacher_create
from tests.generation.openai_server import Faults, OpenAIServer, ServerState, reply_for

pytestmark = pytest.mark.django_db

HEADS = [f"PersonX does thing {i}" for i in range(12)]
RELATIONS = ["xNeed", "xWant"]


@pytest.fixture
def pool(tmp_path):
    path = tmp_path / "pool.tsv"
    path.write_text(
        "PersonX goes fishing\txNeed\ta fishing rod\n"
        "PersonX goes fishing\txWant\tto catch a fish\n"
        "PersonX bakes a cake\txNeed\tnone\n"
        "PersonX bakes a cake\txWant\tto eat the cake\n",
        encoding="utf-8",
    )
    pool = FewShotPool.objects.create(name="refs")
    assert pool_import_tsv(pool=pool, path=path) == 5  # 3 examples + 2 seed events
    return pool


def _teacher(url: str, **extra) -> Teacher:
    return teacher_create(name="loopback", base_url=url, model="m", concurrency=4, **extra)


def _expected(run) -> set[tuple[str, str, str]]:
    """What the server answers for each (head, relation): n tails, first line only."""
    from generation.services.execution import _requests

    batches = list(run.batches.values_list("pk", "head", "relation_id"))
    names = dict(run.relations.values_list("id", "name"))
    out = set()
    for request in _requests(run, batches):
        _, head, relation_id, _ = request.key
        if relation_id is None:  # an event prompt: its answer became heads, not triples
            continue
        for i in range(request.n):
            tail = reply_for(request.prompt, i).strip().split("\n")[0]
            out.add((head, names[relation_id], tail))
    return out


def _written(corpus) -> set[tuple[str, str, str]]:
    return set(
        Triple.objects.filter(corpus=corpus).values_list("head__text", "relation__name", "tail")
    )


@pytest.mark.parametrize("kind", ["429", "500", "malformed"])
def test_a_run_through_429s_500s_and_malformed_bodies_writes_each_triple_once(pool, kind):
    # The teacher check's request (the first) is answered well; the run's meet the faults.
    state = ServerState(faults=Faults(skip_first=1, first_n=5, kind=kind, share=0.25, seed=3))
    with OpenAIServer(state) as server:
        teacher = _teacher(server.url)
        run = run_create(
            teacher=teacher,
            pool=pool,
            corpus_name="teacher-run",
            relations=RELATIONS,
            heads=HEADS,
            n_per_pair=3,
            k_examples=2,
            seed=5,
        )
        estimate = run_estimate(run)
        assert estimate.requests == 24 and estimate.completion_tokens > 0
        run = run_execute(run=run)
    assert _written(run.corpus) == _expected(run)
    assert Triple.objects.filter(corpus=run.corpus, occurrences__gt=1).count() == 0
    assert run.requests_done == 24 and run.triples_written == 72 and run.errors == 0
    assert run.prompt_tokens > 0 and run.completion_tokens == 24 * 12
    assert not run.batches.exclude(status=GenerationBatch.Status.DONE).exists()
    triple = Triple.objects.filter(corpus=run.corpus).first()
    provenance = triple.source_fields_dict
    assert provenance["run"] == run.pk and provenance["teacher"] == "loopback"
    assert len(provenance["prompt"]) == 16 and provenance["logprob"] == -0.75
    assert triple.origin == Triple.Origin.TEACHER


def test_a_restarted_run_continues_where_it_stopped_and_writes_nothing_twice(pool):
    with OpenAIServer() as server:
        # Slow answers, so the stop lands while requests are still to be sent (with
        # instant ones a busy machine could finish all 24 before the stop is looked at).
        server.state.delay = 0.05
        teacher = _teacher(server.url)
        run = run_create(
            teacher=teacher,
            pool=pool,
            corpus_name="teacher-run",
            relations=RELATIONS,
            heads=HEADS,
            n_per_pair=2,
            k_examples=2,
        )
        answered = []
        # The worker is stopped after a few answers (a cancel, or a crash after a flush).
        run_execute(
            run=run, should_stop=lambda: len(answered) > 0 or answered.append(1), check_every=0
        )
        done_first = run.batches.filter(status=GenerationBatch.Status.DONE).count()
        assert 0 < done_first < 24
        sent_first = server.state.requests["chat"]
        run = run_execute(run=run)
        # Only what was still pending went out again.
        assert server.state.requests["chat"] - sent_first == 24 - done_first
    assert _written(run.corpus) == _expected(run)
    assert Triple.objects.filter(corpus=run.corpus, occurrences__gt=1).count() == 0
    assert run.requests_done == 24


def test_failed_batches_are_reported_and_retried_on_the_next_execution(pool):
    with OpenAIServer(ServerState(faults=Faults(skip_first=1, share=1.0, kind="500"))) as server:
        teacher = _teacher(server.url)
        run = run_create(
            teacher=teacher,
            pool=pool,
            corpus_name="teacher-run",
            relations=["xNeed"],
            heads=HEADS[:3],
            n_per_pair=2,
        )
        import generation.ml.http_teacher as http

        original = http.OpenAICompatibleTeacher.__init__

        def quick(self, **kwargs):
            original(self, **{**kwargs, "max_retries": 1, "backoff": 0.001})

        http.OpenAICompatibleTeacher.__init__ = quick
        try:
            run = run_execute(run=run)
        finally:
            http.OpenAICompatibleTeacher.__init__ = original
        assert run.errors == 3
        assert set(run.batches.values_list("status", flat=True)) == {"failed"}
        assert "HTTP 500" in run.batches.first().error
        server.state.faults.share = 0.0
        run = run_execute(run=run)
    assert set(run.batches.values_list("status", flat=True)) == {"done"}
    assert run.triples_written == 6


def test_new_events_then_their_inferences(pool):
    from generation.models import FewShotExample

    FewShotExample.objects.bulk_create(
        [FewShotExample(pool=pool, head=f"PersonX seed event {i}") for i in range(10)]
    )
    with OpenAIServer() as server:
        teacher = _teacher(server.url)
        run = run_create(
            teacher=teacher,
            pool=pool,
            corpus_name="new-events",
            relations=["xNeed"],
            event_prompts=3,
            n_per_pair=2,
            k_examples=2,
        )
        run = run_execute(run=run)
    # Each event prompt's answer is one list item (the server's second line is no item).
    heads = set(Triple.objects.filter(corpus=run.corpus).values_list("head__text", flat=True))
    assert run.events_written == len(heads) == 3
    assert all(h.startswith("thing ") for h in heads)
    assert run.triples_written == 6
    assert _written(run.corpus) == _expected(run)


def test_bad_teacher_configuration_fails_before_any_work(pool, monkeypatch):
    monkeypatch.delenv("SKD_TEST_TEACHER_KEY", raising=False)
    keyed = teacher_create(
        name="keyed",
        base_url="http://127.0.0.1:9/v1",
        model="m",
        api_key_env="SKD_TEST_TEACHER_KEY",
    )
    with pytest.raises(TeacherError, match="SKD_TEST_TEACHER_KEY"):
        run_create(teacher=keyed, pool=pool, corpus_name="x", relations=["xNeed"], heads=["a"])
    unreachable = teacher_create(name="down", base_url="http://127.0.0.1:9/v1", model="m")
    run = run_create(
        teacher=unreachable, pool=pool, corpus_name="x", relations=["xNeed"], heads=["a"]
    )
    with pytest.raises(TeacherError, match="cannot reach the teacher"):
        run_execute(run=run)
    assert run.batches.get().status == GenerationBatch.Status.PENDING
    with pytest.raises(GenerationError, match="Unknown relation"):
        run_create(
            teacher=unreachable, pool=pool, corpus_name="x", relations=["xNope"], heads=["a"]
        )


def test_a_run_job_cancelled_then_started_again_finishes_the_run(pool, client, researcher):
    from django.urls import reverse

    from generation.services.runs import run_job_create, run_job_run
    from jobs.models import Job
    from jobs.services import job_cancel, job_retry

    with OpenAIServer() as server:
        run = run_create(
            teacher=_teacher(server.url),
            pool=pool,
            corpus_name="jobbed",
            relations=["xNeed"],
            heads=HEADS[:4],
            n_per_pair=2,
        )
        job = run_job_create(run=run)
        client.force_login(researcher)
        page = client.get(reverse("jobs:job_detail", args=[job.pk])).content.decode()
        assert "Cancel" in page
        assert job_cancel(job=job)
        assert run_job_run(job_id=job.pk) is None  # a cancelled job is not started
        assert (
            "Start again" in client.get(reverse("jobs:job_detail", args=[job.pk])).content.decode()
        )
        job_retry(job=Job.objects.get(pk=job.pk))
        job = run_job_run(job_id=job.pk)
    assert job.status == Job.Status.SUCCEEDED
    assert job.result["triples"] == 8 and job.result["batches"] == {"done": 4}


def test_estimates_include_cost_when_the_teacher_has_prices(pool):
    teacher = teacher_create(
        name="priced",
        base_url="http://127.0.0.1:9/v1",
        model="m",
        prompt_price_per_1k=0.15,
        completion_price_per_1k=0.6,
    )
    run = run_create(
        teacher=teacher, pool=pool, corpus_name="priced", relations=["xNeed"], heads=HEADS[:2]
    )
    estimate = run_estimate(run)
    expected = estimate.prompt_tokens / 1000 * 0.15 + estimate.completion_tokens / 1000 * 0.6
    assert estimate.cost == pytest.approx(expected, abs=1e-4) and estimate.cost > 0


def test_the_run_counts_the_triples_the_corpus_got_not_the_ones_it_already_held(pool, tmp_path):
    """Half of what the teacher will write is in the corpus already: those only count one
    more occurrence; the run reports the new rows (and says why the rest are not new)."""
    from corpora.services import corpus_import

    with OpenAIServer() as server:
        run = run_create(
            teacher=_teacher(server.url),
            pool=pool,
            corpus_name="half-known",
            relations=RELATIONS,
            heads=HEADS,
            n_per_pair=2,
            k_examples=2,
        )
        expected = sorted(_expected(run))
        known = expected[::2]
        path = tmp_path / "known.tsv"
        path.write_text("".join(f"{h}\t{r}\t{t}\n" for h, r, t in known), encoding="utf-8")
        corpus_import(path=path, corpus_name="half-known", fmt="atomic-tsv")
        run = run_execute(run=run)
    assert len(expected) == 48 and _written(run.corpus) == set(expected)
    assert run.triples_written == 48 - len(known) == 24
    assert run.dropped == {"already in the corpus": 24}
    assert sum(run.batches.values_list("kept", flat=True)) == 24
    twice = Triple.objects.filter(corpus=run.corpus, occurrences=2).count()
    assert twice == 24


def test_tails_the_corpus_merges_are_not_counted_twice(pool):
    """'to eat', 'To eat!' and 'to eat?' are one triple in the corpus (its tail key): the
    run writes and counts one, and calls the others duplicates."""
    variants = ["to eat", "To eat!", "to eat?", "to drink"]
    state = ServerState(reply=lambda prompt, i: variants[i % 4])
    with OpenAIServer(state) as server:
        run = run_create(
            teacher=_teacher(server.url),
            pool=pool,
            corpus_name="merged",
            relations=RELATIONS,
            heads=HEADS[:3],
            n_per_pair=4,
        )
        run = run_execute(run=run)
    assert Triple.objects.filter(corpus=run.corpus).count() == 12
    assert run.triples_written == 12
    assert run.dropped == {"duplicate": 12}


def test_a_run_that_ends_with_an_error_keeps_the_answers_it_had(pool):
    """Whatever ends the loop (here an interrupt from the progress callback), the answers
    already received are written and the run's lease is let go."""
    with OpenAIServer(ServerState(delay=0.02)) as server:
        run = run_create(
            teacher=_teacher(server.url),
            pool=pool,
            corpus_name="interrupted",
            relations=RELATIONS,
            heads=HEADS,
            n_per_pair=2,
        )

        def interrupt(done, total, message):
            if done >= 3:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            run_execute(run=run, progress=interrupt, check_every=0)
    run.refresh_from_db()
    done = run.batches.filter(status=GenerationBatch.Status.DONE).count()
    assert 3 <= done < 24 and run.requests_done == done
    assert Triple.objects.filter(corpus=run.corpus).count() == 2 * done
    assert run.lease_owner == ""
