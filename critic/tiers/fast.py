"""The fast tier: frozen-encoder embeddings cached once per text, and a scikit-learn
head on them, trained in seconds on the default queue."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..ml.embedding import ChunkEmbeddings, chunk_embeddings
from ..ml.fast import FastCritic
from ..ml.loading import fast_load, fast_save, options_load, options_save
from ..services.embedding import embedding_store_get, encoder_get
from .base import CriticTier, LearningOptions, LoadedCritic, Progress, TrainedCritic, TrainingSet


def relation_index(relation_ids: np.ndarray, mapping: dict[int, int]) -> np.ndarray:
    unknown = len(mapping)
    return np.array([mapping.get(int(r), unknown) for r in relation_ids], dtype=np.int64)


@dataclass
class LoadedFastCritic(LoadedCritic):
    version_id: int
    tier: str
    relations: dict[int, int]
    critic: FastCritic
    encoder_name: str
    options: LearningOptions = field(default_factory=LearningOptions)

    def prepare_for_corpus(self) -> None:
        """Map the embedding cache up front."""
        embedding_store_get(encoder_get(self.encoder_name)).prefault()

    def inputs(self, chunk, verbalizations: dict) -> tuple[list[ChunkEmbeddings], np.ndarray]:
        """The chunk's embeddings in each name-swap draw (one read when names stay)."""
        encoder = encoder_get(self.encoder_name)
        store = embedding_store_get(encoder)
        found = [
            chunk_embeddings(encoder, store, chunk, verbalizations, draw=draw)
            for draw in self.options.draws
        ]
        return found, relation_index(chunk.relation_ids, self.relations)

    def score_inputs(self, inputs) -> np.ndarray:
        """P(acceptable), the mean over the name-swap draws."""
        draws, relations = inputs
        total = None
        for found in draws:
            scores = self.critic.predict_indexed(
                found.firsts, found.first_of_row, found.seconds, found.second_of_row, relations
            )
            total = scores if total is None else total + scores
        return total / len(draws)


class FastTier(CriticTier):
    name = "fast"
    queue = "default"
    # The fast head on one BLAS/OpenMP thread: the rescoring pipeline already keeps the
    # cores busy, and idle BLAS threads spinning between small products took half the
    # CPU (7.5 s against 5.8 s wall for 1M triples here).
    blas_threads = 1

    def train(
        self, *, data: TrainingSet, encoder: str, folder: Path, progress: Progress | None = None
    ) -> TrainedCritic:
        from ..ml.fast import train_fast_critic

        loaded = encoder_get(encoder)
        store = embedding_store_get(loaded)
        draws = data.options.draws
        # Copy-major rows: every label in draw 0, then every label in draw 1, ...
        pairs = [
            chunk_embeddings(loaded, store, data.chunk, data.verbalizations, draw=draw).per_row()
            for draw in draws
        ]
        relations = relation_index(data.chunk.relation_ids, data.relations)
        result = train_fast_critic(
            np.concatenate([u for u, _ in pairs]),
            np.concatenate([v for _, v in pairs]),
            np.tile(relations, len(draws)),
            len(data.relations) + 1,
            data.labels,
            folds=min(5, max(2, min(data.positives, len(data) - data.positives))),
            sample_weight=data.sample_weight,
            targets=data.targets,
            copies=len(draws),
        )
        fast_save(folder, result.critic, data.relations)
        options_save(folder, data.options.as_dict())
        return TrainedCritic(result.heldout_scores, result.metrics, loaded.key)

    def load(self, *, version_id: int, folder: Path, encoder: str) -> LoadedFastCritic:
        critic, relations = fast_load(folder)
        return LoadedFastCritic(
            version_id=version_id,
            tier=self.name,
            relations=relations,
            critic=critic,
            encoder_name=encoder,
            options=LearningOptions.from_dict(options_load(folder)),
        )
