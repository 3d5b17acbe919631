"""The strong tier: a cross-encoder fine-tuned with transformers on the `gpu` queue,
scoring each (head + relation, tail) pair of texts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..corpus_data import chunk_texts
from ..ml.loading import cross_load, cross_relations_save, cross_scorer_load
from .base import CriticTier, LoadedCritic, Progress, TrainedCritic, TrainingSet


@dataclass
class LoadedCrossEncoder(LoadedCritic):
    version_id: int
    tier: str
    relations: dict[int, int]
    model_dir: Path

    def inputs(self, chunk, verbalizations: dict) -> tuple[list[str], list[str]]:
        return chunk_texts(chunk, verbalizations)

    def score_inputs(self, inputs) -> np.ndarray:
        firsts, seconds = inputs
        return cross_scorer_load(str(self.model_dir)).score(firsts, seconds)


class CrossEncoderTier(CriticTier):
    name = "cross-encoder"
    queue = "gpu"
    blas_threads = None  # a cross-encoder keeps its threads
    # Hours of one GPU at ATOMIC-10X scale: ranges shared by every worker serving `gpu`.
    shared_rescoring = True

    def train(
        self, *, data: TrainingSet, encoder: str, folder: Path, progress: Progress | None = None
    ) -> TrainedCritic:
        from ..ml.cross import train_cross_encoder

        firsts, seconds = chunk_texts(data.chunk, data.verbalizations)
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
        )
        cross_relations_save(folder, data.relations)
        # Only the held-out share has honest scores; the rest are marked NaN.
        heldout = np.full(len(data), np.nan)
        heldout[result.heldout_index] = result.heldout_scores
        return TrainedCritic(heldout, result.metrics, encoder)

    def load(self, *, version_id: int, folder: Path, encoder: str) -> LoadedCrossEncoder:
        model_dir, relations = cross_load(folder)
        return LoadedCrossEncoder(
            version_id=version_id, tier=self.name, relations=relations, model_dir=model_dir
        )
