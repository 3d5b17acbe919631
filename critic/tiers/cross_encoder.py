"""The strong tier: a cross-encoder fine-tuned with transformers on the `gpu` queue,
scoring each (head + relation, tail) pair of texts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..corpus_data import chunk_texts
from ..ml.loading import (
    cross_load,
    cross_relations_save,
    cross_scorer_load,
    options_load,
    options_save,
)
from .base import CriticTier, LearningOptions, LoadedCritic, Progress, TrainedCritic, TrainingSet


def draw_texts(chunk, verbalizations: dict, options: LearningOptions) -> tuple[list, list]:
    """The chunk's texts in every name-swap draw, copy after copy."""
    firsts: list[str] = []
    seconds: list[str] = []
    for draw in options.draws:
        first, second = chunk_texts(chunk, verbalizations, draw=draw)
        firsts += first
        seconds += second
    return firsts, seconds


@dataclass
class LoadedCrossEncoder(LoadedCritic):
    version_id: int
    tier: str
    relations: dict[int, int]
    model_dir: Path
    options: LearningOptions = field(default_factory=LearningOptions)

    def inputs(self, chunk, verbalizations: dict) -> tuple[list[str], list[str]]:
        return draw_texts(chunk, verbalizations, self.options)

    def score_inputs(self, inputs) -> np.ndarray:
        """P(acceptable), the mean over the name-swap draws. A pair that reads the same in
        several draws (no PersonX/PersonY in it) is scored once."""
        firsts, seconds = inputs
        draws = len(self.options.draws)
        index: dict[tuple[str, str], int] = {}
        row_of = np.fromiter(
            (index.setdefault(pair, len(index)) for pair in zip(firsts, seconds, strict=True)),
            dtype=np.int64,
            count=len(firsts),
        )
        unique = list(index)
        scores = cross_scorer_load(str(self.model_dir)).score(
            [first for first, _ in unique], [second for _, second in unique]
        )
        return scores[row_of].reshape(draws, -1).mean(axis=0)


class CrossEncoderTier(CriticTier):
    name = "cross-encoder"
    queue = "gpu"
    blas_threads = None  # a cross-encoder keeps its threads
    # Hours of one GPU at ATOMIC-10X scale: ranges shared by every worker serving `gpu`.
    shared_rescoring = True
    name_swap_default = True

    def train(
        self, *, data: TrainingSet, encoder: str, folder: Path, progress: Progress | None = None
    ) -> TrainedCritic:
        from ..ml.cross import train_cross_encoder

        firsts, seconds = draw_texts(data.chunk, data.verbalizations, data.options)
        result = train_cross_encoder(
            firsts,
            seconds,
            data.labels,
            base_model=encoder,
            output_dir=folder,
            heldout_share=0.2,
            progress=(
                (lambda step, total: progress(step, total, "fine-tuning")) if progress else None
            ),
            targets=data.targets,
            sample_weight=data.sample_weight,
            copies=len(data.options.draws),
        )
        cross_relations_save(folder, data.relations)
        options_save(folder, data.options.as_dict())
        # Only the held-out share has honest scores; the rest are marked NaN.
        heldout = np.full(len(data), np.nan)
        heldout[result.heldout_index] = result.heldout_scores
        return TrainedCritic(heldout, result.metrics, encoder)

    def load(self, *, version_id: int, folder: Path, encoder: str) -> LoadedCrossEncoder:
        model_dir, relations = cross_load(folder)
        return LoadedCrossEncoder(
            version_id=version_id,
            tier=self.name,
            relations=relations,
            model_dir=model_dir,
            options=LearningOptions.from_dict(options_load(folder)),
        )
