"""The fast tier: frozen-encoder embeddings cached once per text, and a scikit-learn
head on them, trained in seconds on the default queue."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..ml.embedding import ChunkEmbeddings, chunk_embeddings
from ..ml.fast import FastCritic
from ..ml.loading import fast_load, fast_save
from ..services.embedding import embedding_store_get, encoder_get
from .base import CriticTier, LoadedCritic, Progress, TrainedCritic, TrainingSet


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

    def prepare_for_corpus(self) -> None:
        """Map the embedding cache up front."""
        embedding_store_get(encoder_get(self.encoder_name)).prefault()

    def inputs(self, chunk, verbalizations: dict) -> tuple[ChunkEmbeddings, np.ndarray]:
        encoder = encoder_get(self.encoder_name)
        found = chunk_embeddings(encoder, embedding_store_get(encoder), chunk, verbalizations)
        return found, relation_index(chunk.relation_ids, self.relations)

    def score_inputs(self, inputs) -> np.ndarray:
        found, relations = inputs
        return self.critic.predict_indexed(
            found.firsts, found.first_of_row, found.seconds, found.second_of_row, relations
        )


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
        u, v = chunk_embeddings(
            loaded, embedding_store_get(loaded), data.chunk, data.verbalizations
        ).per_row()
        result = train_fast_critic(
            u,
            v,
            relation_index(data.chunk.relation_ids, data.relations),
            len(data.relations) + 1,
            data.labels,
            folds=min(5, max(2, min(data.positives, len(data) - data.positives))),
        )
        fast_save(folder, result.critic, data.relations)
        return TrainedCritic(result.heldout_scores, result.metrics, loaded.key)

    def load(self, *, version_id: int, folder: Path, encoder: str) -> LoadedFastCritic:
        critic, relations = fast_load(folder)
        return LoadedFastCritic(
            version_id=version_id,
            tier=self.name,
            relations=relations,
            critic=critic,
            encoder_name=encoder,
        )
