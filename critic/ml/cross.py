"""The strong critic: a fine-tuned cross-encoder (head+relation text, tail) → P(acceptable).

transformers' AutoModelForSequenceClassification with one logit, trained by the Trainer on
a stratified share of the labels, with dynamic padding and bf16 mixed precision where the
device computes bf16 natively (a GPU, or a CPU with AVX512-BF16/AMX). The
held-out share gives the version its honest scores and metrics; the model trained on the
rest is the one saved and used. No Django import here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .encoder import _sentence_transformers_layout, cpu_has_native_bf16, resolve_encoder_path
from .metrics import classification_metrics


@dataclass
class CrossTrainResult:
    model_dir: Path
    heldout_index: np.ndarray
    heldout_scores: np.ndarray
    metrics: dict
    train_seconds: float
    steps: int


def _device(device: str | None) -> torch.device:
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _native_bf16(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cpu_has_native_bf16()


def base_model_folder(name_or_path: str) -> str:
    """The transformers folder of a base model (a sentence-transformers folder's own
    Transformer module when it is one)."""
    folder = Path(resolve_encoder_path(name_or_path))
    transformer_dir, _, _ = _sentence_transformers_layout(folder)
    return str(transformer_dir)


def _heldout_split(labels: np.ndarray, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    index = np.arange(len(labels))
    if share <= 0:
        return index, np.empty(0, dtype=np.int64)
    train, heldout = train_test_split(index, test_size=share, random_state=seed, stratify=labels)
    return np.sort(train), np.sort(heldout)


class _PairDataset(torch.utils.data.Dataset):
    def __init__(self, tokenizer, first, second, labels, max_length: int, weights=None) -> None:
        self.encoded = tokenizer(
            list(first), list(second), truncation=True, max_length=max_length, padding=False
        )
        self.labels = None if labels is None else np.asarray(labels, dtype=np.float32)
        self.weights = None if weights is None else np.asarray(weights, dtype=np.float32)

    def __len__(self) -> int:
        return len(self.encoded["input_ids"])

    def __getitem__(self, i: int) -> dict:
        item = {key: values[i] for key, values in self.encoded.items()}
        if self.labels is not None:
            item["labels"] = float(self.labels[i])
        if self.weights is not None:
            item["weights"] = float(self.weights[i])
        return item


def train_cross_encoder(
    first: Sequence[str],
    second: Sequence[str],
    labels,
    *,
    base_model: str,
    output_dir: str | Path,
    epochs: float = 3,
    learning_rate: float = 5e-5,
    batch_size: int = 32,
    max_length: int = 64,
    bf16: bool | None = None,
    device: str | None = None,
    heldout_share: float = 0.2,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    max_steps: int | None = None,
    targets=None,
    sample_weight=None,
    copies: int = 1,
) -> CrossTrainResult:
    """Fine-tune ``base_model`` on (first, second) → label pairs; save it under
    ``output_dir/model``; score the held-out share with it.

    ``targets`` (P(acceptable) per label, soft labels) are the loss's targets when given,
    and ``sample_weight`` weighs each label's loss. ``copies``:
    first and second hold that many texts per label, copy after copy (the name-swap
    draws); the held-out share is whole labels, every copy of a training label is trained
    on, and the epochs are divided by ``copies`` so that the steps stay the same (each
    pass over a label sees other names). A held-out label's score is the mean over its
    copies, as when it is scored.
    """
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainerCallback,
        TrainingArguments,
        set_seed,
    )

    y = np.asarray(labels).astype(np.int64)
    n = len(y)
    if len(first) != n * copies or len(second) != n * copies:
        raise ValueError(
            f"first, second and labels must have the same length ({copies} text(s) per label)"
        )
    t = y.astype(np.float32) if targets is None else np.clip(np.asarray(targets, np.float32), 0, 1)
    w = None
    if sample_weight is not None:
        w = np.asarray(sample_weight, dtype=np.float64)
        if len(w) != n or (w < 0).any() or w.sum() <= 0:
            raise ValueError("sample weights must be one per label, non-negative, not all zero")
    if y.min() == y.max():
        raise ValueError("training needs both acceptable and unacceptable labels")
    set_seed(seed)
    target = _device(device)
    if bf16 is None:
        bf16 = _native_bf16(target)
    folder = base_model_folder(base_model)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(
        folder, num_labels=1, problem_type="regression"
    )
    train_index, heldout_index = _heldout_split(y, heldout_share, seed)
    first, second = list(first), list(second)
    rows = _copy_rows(train_index, n, copies)
    train_set = _PairDataset(
        tokenizer,
        [first[i] for i in rows],
        [second[i] for i in rows],
        np.tile(t[train_index], copies),
        max_length,
        None if w is None else np.tile(w[train_index], copies),
    )
    epochs = epochs / copies
    output_dir = Path(output_dir)
    steps_per_epoch = math.ceil(len(train_set) / batch_size)
    total_steps = max_steps or max(1, math.ceil(steps_per_epoch * epochs))

    class Progress(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if progress is not None:
                progress(state.global_step, total_steps)

    arguments = TrainingArguments(
        output_dir=str(output_dir / "checkpoints"),
        per_device_train_batch_size=batch_size,
        num_train_epochs=epochs,
        max_steps=max_steps or -1,
        learning_rate=learning_rate,
        warmup_steps=max(1, total_steps // 10),
        weight_decay=0.01,
        bf16=bool(bf16),
        use_cpu=target.type == "cpu",
        save_strategy="no",
        logging_strategy="no",
        report_to=[],
        seed=seed,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )

    class BinaryTrainer(Trainer):
        # One logit with a logistic loss: scores are probabilities after a sigmoid.
        def compute_loss(self, model, inputs, return_outputs=False, **kwargs):
            targets = inputs.pop("labels")
            weights = inputs.pop("weights", None)
            outputs = model(**inputs)
            logits = outputs.logits.squeeze(-1)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                logits.float(),
                targets.float(),
                weight=None if weights is None else weights.float(),
            )
            return (loss, outputs) if return_outputs else loss

    started = time.perf_counter()
    trainer = BinaryTrainer(
        model=model,
        args=arguments,
        train_dataset=train_set,
        data_collator=DataCollatorWithPadding(tokenizer),
        callbacks=[Progress()],
    )
    result = trainer.train()
    train_seconds = time.perf_counter() - started
    model_dir = output_dir / "model"
    trainer.model.save_pretrained(str(model_dir))
    tokenizer.save_pretrained(str(model_dir))

    scorer = CrossEncoderScorer(model_dir, device=str(target), model=trainer.model)
    heldout_rows = _copy_rows(heldout_index, n, copies)
    heldout_scores = (
        scorer.score([first[i] for i in heldout_rows], [second[i] for i in heldout_rows])
        .reshape(copies, len(heldout_index))
        .mean(axis=0)
    )
    metrics = (
        classification_metrics(y[heldout_index], heldout_scores)
        if len(heldout_index) and 0 < y[heldout_index].sum() < len(heldout_index)
        else {}
    )
    return CrossTrainResult(
        model_dir=model_dir,
        heldout_index=heldout_index,
        heldout_scores=heldout_scores,
        metrics=metrics,
        train_seconds=round(train_seconds, 2),
        steps=int(result.global_step),
    )


def _copy_rows(examples: np.ndarray, n: int, copies: int) -> np.ndarray:
    """The rows of these labels in every copy (copy-major layout)."""
    return (np.arange(copies)[:, None] * n + np.asarray(examples)[None, :]).ravel()


class CrossEncoderScorer:
    """Scores pairs with a saved cross-encoder: length-sorted batches, dynamic padding,
    bf16 autocast where the device computes bf16 natively (GPU, or CPU with AVX512-BF16)."""

    def __init__(
        self,
        model_dir: str | Path,
        *,
        device: str | None = None,
        batch_size: int = 256,
        max_length: int = 64,
        model=None,
    ) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.device = _device(device)
        self.batch_size = batch_size
        self.max_length = max_length
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        if model is None:
            model = AutoModelForSequenceClassification.from_pretrained(str(model_dir))
        self.model = model.to(self.device).eval()
        self.autocast = _native_bf16(self.device)

    def score(self, first: Sequence[str], second: Sequence[str]) -> np.ndarray:
        first, second = list(first), list(second)
        out = np.empty(len(first), dtype=np.float32)
        if not first:
            return out
        encoded = self.tokenizer(first, second, truncation=True, max_length=self.max_length)
        lengths = np.array([len(ids) for ids in encoded["input_ids"]])
        order = np.argsort(-lengths, kind="stable")
        with (
            torch.inference_mode(),
            torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast),
        ):
            for start in range(0, len(order), self.batch_size):
                index = order[start : start + self.batch_size]
                batch = self.tokenizer.pad(
                    {key: [values[i] for i in index] for key, values in encoded.items()},
                    return_tensors="pt",
                )
                batch = {key: value.to(self.device) for key, value in batch.items()}
                logits = self.model(**batch).logits.squeeze(-1).float()
                out[index] = torch.sigmoid(logits).cpu().numpy()
        return out
