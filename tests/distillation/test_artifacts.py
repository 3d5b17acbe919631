"""Student artifacts that cannot collide: each run's files live under its own key, and a
trained model whose files are not the ones trained for it refuses to load."""

import pytest

from core.artifacts import artifact_mismatch, forget_verified
from distillation.errors import StudentArtifactError
from distillation.folders import UNCHECKED_FILES, model_folder, run_folder
from distillation.models import StudentRun
from distillation.services.archives import student_archive
from distillation.services.runs import student_run_create
from distillation.services.training import student_train
from tests.sequences import next_id_will_be

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_verifications():
    forget_verified()
    yield
    forget_verified()


def _trained(corpus, base_model, **overrides) -> StudentRun:
    params = dict(
        name="student-1",
        corpus=corpus,
        base_model=base_model,
        max_steps=3,
        batch_size=8,
        learning_rate=3e-3,
        save_every=8,
        device="cpu",
    )
    params.update(overrides)
    return student_train(run=student_run_create(**params))


def test_a_run_with_another_databases_id_gets_its_own_folder(
    labelled_corpus, tiny_gpt2, one_torch_thread
):
    mine = _trained(labelled_corpus, tiny_gpt2)
    assert mine.is_trained and len(mine.checksum) == 64

    # Another database on the same artifact root: its run has the same id and name.
    StudentRun.objects.filter(pk=mine.pk).delete()
    next_id_will_be(StudentRun, mine.pk)
    theirs = _trained(labelled_corpus, tiny_gpt2, seed=1, learning_rate=1e-2)
    assert theirs.pk == mine.pk
    assert run_folder(theirs) != run_folder(mine)

    # Mine is untouched and still loads.
    assert artifact_mismatch(model_folder(mine), mine.checksum, skip=UNCHECKED_FILES) is None
    StudentRun.objects.filter(pk=theirs.pk).delete()
    mine.save(force_insert=True)
    assert b"".join(student_archive(run=mine))
    assert mine.folder == f"students/{mine.artifact_key}"


def test_a_student_whose_model_changed_refuses_to_load(
    labelled_corpus, tiny_gpt2, one_torch_thread
):
    run = _trained(labelled_corpus, tiny_gpt2)
    assert b"".join(student_archive(run=run))
    # The card is rewritten as evaluations arrive: not part of the checksum.
    (model_folder(run) / "README.md").write_text("a newer card")
    assert b"".join(student_archive(run=run))

    weights = next(model_folder(run).glob("model.safetensors"))
    weights.write_bytes(weights.read_bytes() + b"\0")
    with pytest.raises(StudentArtifactError) as caught:
        student_archive(run=run)
    assert "student-1" in str(caught.value) and str(model_folder(run)) in str(caught.value)

    weights.unlink()
    with pytest.raises(StudentArtifactError, match="student-1"):
        student_archive(run=run)


def test_a_run_trained_before_checksums_still_loads_from_its_stored_folder(
    labelled_corpus, tiny_gpt2, one_torch_thread
):
    run = _trained(labelled_corpus, tiny_gpt2)
    legacy = f"students/run-{run.pk}"
    run_folder(run).rename(run_folder(run).parent / f"run-{run.pk}")
    StudentRun.objects.filter(pk=run.pk).update(folder=legacy, checksum="")
    run.refresh_from_db()
    assert b"".join(student_archive(run=run))
