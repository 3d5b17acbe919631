"""Student runs end to end on a tiny model: from a preset's cut to an evaluated corpus that
goes to annotation and into the comparison table."""

import io
import re
import zipfile

import pyarrow.parquet as pq
import pytest
from django.core.management import CommandError, call_command

from annotation.models import Campaign, Item
from corpora.formats import normalize_tail
from corpora.models import Corpus, Triple
from critic.services.presets import preset_save
from critic.services.scoring import corpus_rescore
from critic.services.training import critic_train
from distillation import selectors
from distillation.errors import DistillationError
from distillation.folders import model_folder, run_folder
from distillation.models import StudentRun
from distillation.services.archives import student_archive
from distillation.services.evaluations import evaluation_create, evaluation_execute
from distillation.services.outputs import evaluation_send_to_annotation
from distillation.services.runs import TRAIN_JOB, student_run_create, student_run_start
from distillation.services.training import student_train, student_train_job_run
from jobs.models import Job

pytestmark = pytest.mark.django_db


@pytest.fixture
def preset(labelled_corpus):
    version = critic_train(corpus=labelled_corpus, queue_rescore=False)
    corpus_rescore(corpus=labelled_corpus)
    return preset_save(corpus=labelled_corpus, name="keep-half", version=version, threshold=0.5)


def _run(preset, base_model, **overrides) -> StudentRun:
    params = dict(
        name="student-1",
        corpus=preset.corpus,
        preset=preset,
        base_model=base_model,
        val_split="val",
        max_steps=24,
        batch_size=8,
        learning_rate=3e-3,
        save_every=8,
        device="cpu",
    )
    params.update(overrides)
    return student_run_create(**params)


def test_a_run_trains_on_the_cut_of_its_preset_and_its_loss_falls(preset, tiny_gpt2):
    run = _run(preset, tiny_gpt2)
    assert run.architecture == "causal" and run.critic_version_id == preset.version_id

    run = student_train(run=run)

    kept = (
        Triple.objects.filter(corpus=preset.corpus)
        .with_score(preset.corpus)
        .filter(split="train", score__gte=0.5)
        .count()
    )
    assert 0 < kept < Triple.objects.filter(corpus=preset.corpus, split="train").count()
    snapshot = pq.read_table(run_folder(run) / "train.parquet")
    assert run.train_examples == snapshot.num_rows == kept
    # Validation is the same cut of the val split.
    val_kept = (
        Triple.objects.filter(corpus=preset.corpus)
        .with_score(preset.corpus)
        .filter(split="val", score__gte=0.5)
        .count()
    )
    assert run.val_examples == val_kept > 0
    assert run.is_trained and run.steps == 24 and run.eval_loss is not None
    losses = [loss for _, loss in run.loss_history]
    assert len(losses) >= 3 and losses[-1] < losses[0]
    folder = model_folder(run)
    assert (folder / "config.json").exists()
    card = (folder / "README.md").read_text()
    assert "keep-half" in card and f"critic v{preset.version.number}" in card
    assert "imported from demo_corpus.jsonl (skd, 347 triples" in card


def test_a_stopped_run_resumes_from_its_last_checkpoint(preset, tiny_gpt2):
    run = _run(preset, tiny_gpt2)
    calls = []

    def stop_soon() -> bool:
        calls.append(1)
        return len(calls) > 10

    run = student_train(run=run, should_stop=stop_soon)
    assert not run.is_trained and 0 < run.steps < 24
    stopped_at = run.steps
    assert any((run_folder(run) / "checkpoints").iterdir())

    run = student_train(run=run)
    assert run.is_trained and run.steps == 24
    assert not (run_folder(run) / "checkpoints").exists()  # done: no resume needed
    # The curve keeps the steps from before the stop.
    steps = [step for step, _ in run.loss_history]
    assert steps == sorted(steps) and min(steps) <= stopped_at


def test_the_training_job_reports_and_a_second_start_is_refused(preset, tiny_gpt2):
    run = _run(preset, tiny_gpt2, max_steps=4)
    job = student_run_start(run=run)
    assert job.kind == TRAIN_JOB and job.status == Job.Status.QUEUED
    assert student_run_start(run=run).pk == job.pk  # a second click joins it

    student_train_job_run(job_id=job.pk)

    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.result["finished"] and job.result["steps"] == 4
    run.refresh_from_db()
    with pytest.raises(DistillationError, match="finished training"):
        student_run_start(run=run)


def test_bad_runs_are_refused_before_any_work(preset, tiny_gpt2, tmp_path):
    with pytest.raises(DistillationError, match="nope"):
        _run(preset, str(tmp_path / "nope"))
    other = Corpus.objects.create(name="other")
    with pytest.raises(DistillationError, match="belongs to corpus"):
        _run(preset, tiny_gpt2, corpus=other)
    with pytest.raises(DistillationError, match="no triples in split 'dev'"):
        _run(preset, tiny_gpt2, train_split="dev")
    assert not StudentRun.objects.exists()


def test_evaluation_writes_a_student_corpus_measures_it_and_goes_to_annotation(preset, tiny_gpt2):
    run = student_train(run=_run(preset, tiny_gpt2, max_steps=30))
    evaluation = evaluation_create(run=run, heads_split="test", max_heads=5)

    evaluation = evaluation_execute(evaluation=evaluation)

    outputs = Triple.objects.filter(corpus=evaluation.corpus)
    test_heads = set(
        Triple.objects.filter(corpus=preset.corpus, split="test").values_list("head", flat=True)
    )
    assert outputs.exists() and all(t.origin == Triple.Origin.STUDENT for t in outputs)
    assert set(outputs.values_list("head", flat=True)) <= test_heads
    assert len(set(outputs.values_list("head", flat=True))) <= 5
    metrics = evaluation.metrics
    assert metrics["written"] == outputs.count() == evaluation.corpus.triple_count
    overall = metrics["overall"]
    assert 0.0 <= overall["distinct_1"] <= 1.0
    training = {
        normalize_tail(t)
        for t in pq.read_table(run_folder(run) / "train.parquet")["tail"].to_pylist()
    }
    tails = list(outputs.values_list("tail", flat=True))
    novel = sum(normalize_tail(t) not in training for t in tails)
    assert overall["novelty"] == pytest.approx(novel / len(tails))
    assert overall["with_references"] > 0 and overall["bleu"] is not None
    critic = metrics["critic"]
    assert critic["version"] == preset.version.number
    assert critic["overall"]["n"] == outputs.count()
    assert 0.0 <= critic["overall"]["acceptance"] <= 1.0

    # A retried job writes the same outputs again, not twice.
    evaluation_execute(evaluation=evaluation)
    assert Triple.objects.filter(corpus=evaluation.corpus).count() == metrics["written"]

    campaign = evaluation_send_to_annotation(evaluation=evaluation)
    assert campaign.corpus_id == evaluation.corpus_id
    # Every output, and the teacher's tails for the same heads and relations mixed in.
    items = Item.objects.filter(campaign=campaign, is_gold=False)
    assert items.filter(source__in=["student", "both"]).count() == outputs.count()
    assert campaign.item_count == items.count() > outputs.count()
    assert run.name not in campaign.name and run.name not in campaign.instructions
    assert evaluation_send_to_annotation(evaluation=evaluation).pk == campaign.pk
    assert Campaign.objects.filter(corpus=evaluation.corpus).count() == 1

    lineage = selectors.triple_lineage(triple=outputs.first())
    walked = lineage["student"]["lineage"]
    assert walked["run"]["name"] == run.name
    assert walked["cut"]["preset"] == "keep-half"
    assert walked["cut"]["critic_version"] == preset.version.number
    assert any(c["name"].startswith("imported") for c in walked["cut"]["campaigns"])


def test_comparison_has_the_teacher_its_cut_and_the_student(preset, tiny_gpt2):
    run = student_train(run=_run(preset, tiny_gpt2, max_steps=30))
    evaluation = evaluation_execute(evaluation=evaluation_create(run=run, max_heads=4))

    rows = selectors.comparison(corpus=preset.corpus)

    kinds = [row.kind for row in rows]
    assert kinds == ["teacher", "filtered", "student"]
    teacher, filtered, student = rows
    assert teacher.size == preset.corpus.triple_count
    assert teacher.acceptance.basis == "human"  # the imported SKD labels
    assert filtered.size < teacher.size and filtered.acceptance.rate is not None
    assert student.size == evaluation.corpus.triple_count
    assert student.acceptance.basis == "critic"
    # Diversity of every row rests on as many tails as the student wrote.
    assert {row.diversity_n for row in rows} == {student.size}
    assert 0.0 < teacher.distinct_1 <= 1.0 and 0.0 < student.distinct_1 <= 1.0


def test_the_downloaded_model_is_a_transformers_folder_with_its_card(preset, tiny_gpt2):
    run = student_train(run=_run(preset, tiny_gpt2, max_steps=2))
    streamed = b"".join(student_archive(run=run))
    archive = zipfile.ZipFile(io.BytesIO(streamed))
    assert archive.testzip() is None  # every member's CRC checks out
    names = archive.namelist()
    assert f"{run.name}/config.json" in names and f"{run.name}/README.md" in names
    assert not any("checkpoint" in name for name in names)
    weights = model_folder(run) / "model.safetensors"
    assert archive.read(f"{run.name}/model.safetensors") == weights.read_bytes()


def test_cli_trains_and_evaluates_a_t5_student(preset, tiny_t5):
    out = io.StringIO()
    call_command(
        "train_student",
        "--name=t5-student",
        f"--corpus={preset.corpus.name}",
        "--preset=keep-half",
        f"--base-model={tiny_t5}",
        "--max-steps=4",
        "--batch-size=8",
        "--device=cpu",
        stdout=out,
        stderr=io.StringIO(),
    )
    assert "Run 't5-student': 4 steps" in out.getvalue()
    run = StudentRun.objects.get(name="t5-student")
    assert run.architecture == "seq2seq" and run.is_trained

    out = io.StringIO()
    call_command(
        "evaluate_student",
        "--run=t5-student",
        "--max-heads=3",
        "--decoding=beam",
        "--n=2",
        "--send-to-annotation",
        stdout=out,
        stderr=io.StringIO(),
    )
    assert "into corpus 't5-student · eval 1'" in out.getvalue()
    assert re.search(r"Campaign 'Commonsense judgments [-0-9]+ #1'", out.getvalue())

    with pytest.raises(CommandError, match="no preset 'missing'"):
        call_command(
            "train_student",
            "--name=x",
            f"--corpus={preset.corpus.name}",
            "--preset=missing",
            f"--base-model={tiny_t5}",
        )


def test_a_long_training_runs_in_slices_that_queue_themselves_again(
    preset, tiny_gpt2, settings, django_capture_on_commit_callbacks
):
    settings.STUDENT_TRAIN_SLICE_SECONDS = 0  # every slice ends after its first step
    run = _run(preset, tiny_gpt2, max_steps=6, save_every=100)
    job = student_run_start(run=run)

    with django_capture_on_commit_callbacks() as sent:
        student_train_job_run(job_id=job.pk, attempt=1)

    job.refresh_from_db()
    run.refresh_from_db()
    assert job.status == Job.Status.QUEUED and len(sent) == 1  # the next slice's task
    assert not run.is_trained and run.steps == 1
    # The first slice's message, delivered again, does not start the next slice.
    assert student_train_job_run(job_id=job.pk, attempt=1) is None

    settings.STUDENT_TRAIN_SLICE_SECONDS = 3600
    with django_capture_on_commit_callbacks() as sent:
        student_train_job_run(job_id=job.pk, attempt=2)

    job.refresh_from_db()
    run.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED and run.is_trained and run.steps == 6
    assert sent == []  # the last slice queues nothing


@pytest.mark.one_leg
def test_a_run_on_two_processes_trains_data_parallel_in_slices_and_resumes(
    preset, tiny_gpt2, settings, django_capture_on_commit_callbacks
):
    """Two CPU processes under torchrun (gloo), as a host's GPUs would train: the first
    slice stops at a checkpoint, the next resumes from it and finishes."""
    import json

    settings.STUDENT_TRAIN_PROCESSES = 2
    settings.STUDENT_TRAIN_SLICE_SECONDS = 0  # the first slice stops after one step
    run = _run(preset, tiny_gpt2, max_steps=6, save_every=100)
    job = student_run_start(run=run)

    with django_capture_on_commit_callbacks() as sent:
        student_train_job_run(job_id=job.pk, attempt=1)

    job.refresh_from_db()
    run.refresh_from_db()
    assert job.status == Job.Status.QUEUED, job.error
    assert len(sent) == 1 and not run.is_trained and run.steps == 1
    launch = run_folder(run) / "launch"
    first = json.loads((launch / "result.json").read_text())
    assert first["processes"] == 2 and first["stopped"] and first["steps"] == 1
    assert (run_folder(run) / "checkpoints" / "checkpoint-1" / "trainer_state.json").is_file()

    settings.STUDENT_TRAIN_SLICE_SECONDS = 3600
    student_train_job_run(job_id=job.pk, attempt=2)

    job.refresh_from_db()
    run.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.result["processes"] == 2 and job.result["finished"]
    assert run.is_trained and run.steps == 6 and run.tokens > 0
    second = json.loads((launch / "result.json").read_text())
    assert second["processes"] == 2 and second["resumed_from_step"] == 1
    assert [step for step, _ in run.loss_history] == [1, 2, 3, 4, 5, 6]
    assert (model_folder(run) / "skd_student.json").is_file()
    assert "step 6/6" in job.progress_message and "2 processes" in job.progress_message
