"""Validation loss while a student trains (not only at the end), so overfitting shows."""

import json

import pytest

from distillation.ml.training import EVAL_HISTORY_FILE, StudentConfig, train_student


@pytest.fixture(scope="module")
def watched_run(one_torch_thread, tiny_gpt2, student_corpus, tmp_path_factory):
    """24 steps of the tiny GPT-2, reading the validation history file after every step."""
    train, val = student_corpus
    work_dir = tmp_path_factory.mktemp("validated-run")
    seen: dict[int, list] = {}

    def on_progress(state) -> None:
        path = work_dir / EVAL_HISTORY_FILE
        seen[state.step] = json.loads(path.read_text()) if path.exists() else []

    config = StudentConfig(
        base_model=tiny_gpt2, learning_rate=3e-3, batch_size=8, max_steps=24, device="cpu"
    )
    result = train_student(
        config=config, train_path=train, val_path=val, work_dir=work_dir, on_progress=on_progress
    )
    return result, work_dir, seen


def test_validation_loss_is_measured_while_training(watched_run):
    result, work_dir, seen = watched_run
    steps = [step for step, _ in result.eval_history]
    # Several evaluations spread over the run, the last on the whole set at the last step.
    assert len(steps) >= 4 and steps == sorted(set(steps)) and steps[-1] == 24
    assert steps[0] < 24 // 2
    assert result.eval_history[-1][1] == pytest.approx(result.eval_loss)
    # Written as it goes: halfway through, the file already held the evaluations before.
    assert [p[0] for p in seen[12]] == [s for s in steps if s < 12] and seen[12]
    assert json.loads((work_dir / EVAL_HISTORY_FILE).read_text()) == [
        list(p) for p in result.eval_history
    ]
    losses = [loss for _, loss in result.eval_history]
    assert losses[-1] < losses[0]


def test_no_validation_rows_no_validation_history(
    one_torch_thread, tiny_gpt2, student_corpus, tmp_path
):
    train, _ = student_corpus
    config = StudentConfig(base_model=tiny_gpt2, batch_size=8, max_steps=3, device="cpu")
    result = train_student(config=config, train_path=train, val_path=None, work_dir=tmp_path)
    assert result.eval_history == [] and result.eval_loss is None
    assert json.loads((tmp_path / EVAL_HISTORY_FILE).read_text()) == []
