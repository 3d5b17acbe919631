"""Fine-tune a student (a causal LM such as GPT-2, or a seq2seq LM such as T5/BART) on
(head, relation, tail) rows in COMET's format, with transformers' Trainer.

The rows and their batches are in ``batches`` (Arrow rows, tokenized and padded per batch,
loss on the tail only); the base model, device and precision in ``base_model``.

Checkpoints go to ``work_dir/checkpoints`` every ``save_every`` optimizer steps and at the
last step (the last two are kept; ``save_every=0`` saves none, for benchmarks); a call
that finds one resumes from the latest complete one, so a worker killed mid-run picks up
where it was when the job is retried. ``should_stop`` ends a run early after saving a
checkpoint. The finished model and its tokenizer are saved with
``save_pretrained`` into ``work_dir/model`` together with ``skd_student.json``.

Launched under torchrun (``distillation.ml.parallel``: one process per GPU of a host, or
N CPU processes with the gloo backend), the Trainer trains data-parallel: the batch size
is the whole step's, split among the processes, so a run takes the same optimizer steps
on any number of them; only the main process writes files, asks ``should_stop`` (its
answer reaches the others) and reports progress, with the tokens of all processes.
No Django import here; nothing is downloaded (models load with ``local_files_only``).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .base_model import (
    bf16_supported,
    detect_architecture,
    load_tokenizer_and_model,
    resolve_device,
)
from .batches import LengthGroupedSampler, TripleCollator, TripleRows
from .errors import StudentError
from .formatting import FORMAT

STUDENT_FILE = "skd_student.json"
HISTORY_FILE = "loss_history.json"
EVAL_HISTORY_FILE = "eval_history.json"


@dataclass
class StudentConfig:
    base_model: str  # local path or hub id already in the HF cache
    epochs: float = 1.0
    learning_rate: float = 5e-5
    batch_size: int = 16
    grad_accum: int = 1
    max_length: int = 64  # tokens of source+target (a seq2seq model: each side)
    bf16: bool = False  # used only where the device supports it
    seed: int = 0
    max_steps: int | None = None  # overrides epochs when set
    warmup_ratio: float = 0.0
    save_every: int = 200  # checkpoint every N optimizer steps; 0: no checkpoints at all
    device: str = "auto"  # auto | cpu | cuda
    torch_compile: bool = False  # torch.compile the model (GPU; first steps compile)
    group_by_length: bool = False  # batches of rows of similar length: less padding, faster
    # Validation loss while training (when there are validation rows): about this many
    # evaluations over the run, each on an evenly spread sample of the validation rows
    # (a quarter as many rows as were trained on since the last one, within the bounds),
    # so it costs under a tenth of the training; the full set is evaluated at the end.
    eval_points: int = 20
    eval_rows_min: int = 128
    eval_rows_max: int = 1000


@dataclass
class TrainProgress:
    step: int
    total_steps: int
    epoch: float
    loss: float | None
    tokens: int
    tokens_per_second: float
    elapsed_seconds: float
    eta_seconds: float | None


@dataclass
class TrainResult:
    architecture: str  # "causal" or "seq2seq"
    parameters: int
    steps: int
    total_steps: int
    train_loss: float | None  # mean of the last logged window
    eval_loss: float | None  # on val rows when given
    tokens: int  # source+target tokens (non-padding) processed by this call
    seconds: float  # this call's training loop (no loading, final saving or evaluation)
    tokens_per_second: float
    resumed_from_step: int  # 0 when fresh
    stopped: bool  # should_stop ended it early (a checkpoint was saved)
    loss_history: list[tuple[int, float]] = field(default_factory=list)
    precision: str = "fp32"  # "bf16" (mixed precision) or "fp32"
    # Validation loss during training, then on the whole validation set at the last step.
    eval_history: list[tuple[int, float]] = field(default_factory=list)
    processes: int = 1  # that trained together (data-parallel under torchrun)


# --- checkpoints and history --------------------------------------------------------------


def latest_checkpoint(folder: Path) -> Path | None:
    """The newest complete checkpoint in ``folder`` (its trainer_state.json is written
    last); incomplete ones, left by a worker killed while saving, are removed."""
    if not folder.is_dir():
        return None
    found = []
    for path in folder.iterdir():
        name = path.name
        if path.is_dir() and name.startswith("checkpoint-") and name[11:].isdigit():
            if (path / "trainer_state.json").is_file():
                found.append((int(name[11:]), path))
            else:
                shutil.rmtree(path, ignore_errors=True)
    return max(found)[1] if found else None


def _checkpoint_step(checkpoint: Path) -> int:
    with open(checkpoint / "trainer_state.json", encoding="utf-8") as handle:
        return int(json.load(handle).get("global_step", 0))


def _loss_history(log_history: list[dict]) -> list[tuple[int, float]]:
    return [(int(e["step"]), float(e["loss"])) for e in log_history if "loss" in e]


def _eval_history(log_history: list[dict]) -> list[tuple[int, float]]:
    return [(int(e["step"]), float(e["eval_loss"])) for e in log_history if "eval_loss" in e]


def _write_json(path: Path, data) -> None:
    temporary = path.with_suffix(path.suffix + ".tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
    os.replace(temporary, path)


def world_size() -> int:
    """How many processes train together (torchrun's WORLD_SIZE; 1 outside torchrun)."""
    return max(1, int(os.environ.get("WORLD_SIZE", "1")))


class _Ranks:
    """Agreement among the processes of a data-parallel run, on a gloo group of its own
    (CPU tensors: no GPU synchronization per step): the main process's stop decision and
    the tokens of all processes. One process: everything stays local."""

    def __init__(self, world: int) -> None:
        self.world = world
        self.group = None

    def begin(self) -> None:
        if self.world > 1 and self.group is None:
            import torch.distributed as dist

            self.group = dist.new_group(backend="gloo")

    def gather(self, stop: bool, tokens: int) -> tuple[bool, int]:
        if self.group is None:
            return stop, tokens
        import torch
        import torch.distributed as dist

        values = torch.tensor([int(stop), tokens], dtype=torch.int64)
        dist.all_reduce(values, group=self.group)
        return bool(values[0]), int(values[1])


def _logging_steps(total_steps: int) -> int:
    return max(1, min(50, total_steps // 100))


def _eval_plan(
    config: StudentConfig, planned: int, val_rows: int, world: int = 1
) -> tuple[int, int]:
    """(evaluate every N steps, validation rows per evaluation) while training: about
    `eval_points` evaluations, each on a quarter as many rows as were trained on since the
    last one (within the bounds), and spaced so that each costs at most a tenth of the
    training between two (a forward pass costs about a third of a training step)."""
    every = max(1, planned // max(1, config.eval_points))
    per_step = _per_device_batch(config, world) * world * config.grad_accum
    rows = min(val_rows, config.eval_rows_max, max(config.eval_rows_min, every * per_step // 4))
    return max(every, math.ceil(rows / (0.3 * per_step))), rows


def _per_device_batch(config: StudentConfig, world: int) -> int:
    """Each process's share of the step's batch (rounded up: a batch of 10 on 4 processes
    trains 3 rows on each)."""
    return -(-config.batch_size // world)


# --- training -----------------------------------------------------------------------------


def train_student(
    *,
    config: StudentConfig,
    train_path: Path,
    val_path: Path | None,
    work_dir: Path,
    on_progress: Callable[[TrainProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Fine-tune ``config.base_model`` on the rows of ``train_path``; see the module's
    docstring. ``on_progress`` and ``should_stop`` are called after every optimizer step
    (keep them cheap). The training loss is logged every max(1, min(50, total/100)) steps
    and at the last step; ``work_dir/loss_history.json`` holds [[step, loss], ...] so far.
    With validation rows, the validation loss is measured every so often while training
    (see StudentConfig.eval_points) and on the whole set at the end;
    ``work_dir/eval_history.json`` holds [[step, validation loss], ...] so far.
    Under torchrun, ``on_progress`` and ``should_stop`` are called on the main process
    only, and only its return value is complete."""
    from transformers import (
        PrinterCallback,
        Trainer,
        TrainerCallback,
        TrainingArguments,
        set_seed,
    )

    architecture = detect_architecture(config.base_model)
    device = resolve_device(config.device)
    precision = "bf16" if config.bf16 and bf16_supported(device) else "fp32"
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    world = world_size()
    main = int(os.environ.get("RANK", "0")) == 0
    ranks = _Ranks(world)
    per_device = _per_device_batch(config, world)
    checkpoints = work_dir / "checkpoints"
    history_path = work_dir / HISTORY_FILE
    eval_history_path = work_dir / EVAL_HISTORY_FILE

    train_rows = TripleRows(train_path)
    if len(train_rows) == 0:
        raise StudentError(f"{Path(train_path).name} has no rows to train on")
    val_rows = TripleRows(val_path) if val_path is not None else None
    relations = sorted(set(train_rows.relations()) | set(val_rows.relations() if val_rows else []))
    set_seed(config.seed)
    tokenizer, model = load_tokenizer_and_model(config.base_model, architecture, relations)
    collator = TripleCollator(
        tokenizer,
        architecture,
        config.max_length,
        pad_to_multiple_of=8 if device.type == "cuda" else 1,
        label_bos=model.generation_config.forced_bos_token_id
        if architecture == "seq2seq"
        else None,
    )
    resume = latest_checkpoint(checkpoints)
    resumed_from_step = _checkpoint_step(resume) if resume else 0

    # Steps as the Trainer counts them, to pick a logging interval.
    batches = -(-len(train_rows) // (per_device * world))
    per_epoch = max(1, batches // config.grad_accum)
    planned = config.max_steps or max(1, int(per_epoch * config.epochs + 0.999999))
    validating = val_rows is not None and len(val_rows) > 0
    eval_every, eval_count = _eval_plan(config, planned, len(val_rows) if validating else 0, world)

    arguments = TrainingArguments(
        output_dir=str(checkpoints),
        per_device_train_batch_size=per_device,
        per_device_eval_batch_size=per_device,
        gradient_accumulation_steps=config.grad_accum,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps or -1,
        learning_rate=config.learning_rate,
        warmup_steps=config.warmup_ratio if 0 < config.warmup_ratio < 1 else 0,
        bf16=precision == "bf16",
        use_cpu=device.type == "cpu",
        ddp_backend="gloo" if world > 1 and device.type == "cpu" else None,
        ddp_find_unused_parameters=False,  # students use every parameter in each step
        seed=config.seed,
        logging_strategy="steps",
        logging_steps=_logging_steps(planned),
        logging_nan_inf_filter=False,  # it syncs the GPU on every step
        save_strategy="steps" if config.save_every > 0 else "no",
        save_steps=max(1, config.save_every),
        save_total_limit=2,
        eval_strategy="steps" if validating else "no",
        eval_steps=eval_every,
        prediction_loss_only=True,
        remove_unused_columns=False,
        report_to=[],
        disable_tqdm=True,
        dataloader_num_workers=0,
        torch_compile=config.torch_compile,
    )

    class StudentTrainer(Trainer):
        tokens = 0

        def _get_train_sampler(self, train_dataset=None):
            if not config.group_by_length:
                return super()._get_train_sampler(train_dataset)
            return LengthGroupedSampler(
                train_rows.lengths(), self.args.per_device_train_batch_size, config.seed
            )

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            tokens = inputs.pop("num_tokens", 0)
            if model.training:
                self.tokens += int(tokens)
            return super().compute_loss(
                model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
            )

    class Progress(TrainerCallback):
        def __init__(self) -> None:
            self.started = time.perf_counter()
            self.start_step = 0
            self.elapsed = 0.0
            self.loss: float | None = None
            self.stopped = False
            self.tokens = 0  # of all processes

        def on_train_begin(self, args, state, control, **kwargs):
            ranks.begin()
            self.started = time.perf_counter()
            self.start_step = state.global_step
            if main:
                _write_json(history_path, _loss_history(state.log_history))
                _write_json(eval_history_path, _eval_history(state.log_history))

        def on_step_end(self, args, state, control, **kwargs):
            stop = (
                main
                and should_stop is not None
                and state.global_step < state.max_steps
                and should_stop()
            )
            stop, self.tokens = ranks.gather(stop, trainer.tokens)
            if stop:
                self.stopped = True
                control.should_training_stop = True
                control.should_save = config.save_every > 0
            if self.stopped or state.global_step >= state.max_steps:
                control.should_log = True  # the last window's loss is never lost
            self.elapsed = time.perf_counter() - self.started
            if on_progress is not None and main:
                done = state.global_step - self.start_step
                rate = self.tokens / self.elapsed if self.elapsed > 0 else 0.0
                eta = (state.max_steps - state.global_step) * self.elapsed / done if done else None
                on_progress(
                    TrainProgress(
                        step=state.global_step,
                        total_steps=state.max_steps,
                        epoch=float(state.epoch or 0.0),
                        loss=self.loss,
                        tokens=self.tokens,
                        tokens_per_second=rate,
                        elapsed_seconds=self.elapsed,
                        eta_seconds=eta,
                    )
                )

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not main:
                return
            if logs and "loss" in logs:
                self.loss = float(logs["loss"])
                _write_json(history_path, _loss_history(state.log_history))
            if logs and "eval_loss" in logs:
                _write_json(eval_history_path, _eval_history(state.log_history))

    progress = Progress()
    trainer = StudentTrainer(
        model=model,
        args=arguments,
        train_dataset=train_rows,
        eval_dataset=val_rows.spread(eval_count) if validating else None,
        data_collator=collator,
        processing_class=tokenizer,
        callbacks=[progress],
    )
    trainer.remove_callback(PrinterCallback)  # progress goes to on_progress, not stdout
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    state = trainer.state
    history = _loss_history(state.log_history)
    if main:
        _write_json(history_path, history)
    eval_history = _eval_history(state.log_history)

    eval_loss = None
    if not progress.stopped:
        model_dir = work_dir / "model"
        trainer.save_model(str(model_dir))  # by the main process; every process calls it
        if main:
            tokenizer.save_pretrained(str(model_dir))
            _write_json(
                model_dir / STUDENT_FILE,
                {"architecture": architecture, "relations": relations, "format": FORMAT},
            )
        if validating:
            eval_loss = float(trainer.evaluate(eval_dataset=val_rows)["eval_loss"])
            # The last point is the whole set's loss, not a sample's at the same step.
            steps = int(state.global_step)
            eval_history = [p for p in eval_history if p[0] != steps] + [(steps, eval_loss)]
        if main:
            _write_json(eval_history_path, eval_history)
    seconds = progress.elapsed
    return TrainResult(
        architecture=architecture,
        parameters=int(trainer.model.num_parameters()),
        steps=int(state.global_step),
        total_steps=int(state.max_steps),
        train_loss=history[-1][1] if history else None,
        eval_loss=eval_loss,
        tokens=progress.tokens,
        seconds=seconds,
        tokens_per_second=progress.tokens / seconds if seconds > 0 else 0.0,
        resumed_from_step=resumed_from_step,
        stopped=progress.stopped,
        loss_history=history,
        precision=precision,
        eval_history=eval_history,
        processes=world,
    )
