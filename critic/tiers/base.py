"""What a critic tier is: how it trains a version, loads one from disk and scores
triples with it. Each tier is a module of this package, registered in `__init__.py`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:
    from ..corpus_data import TripleChunk

Progress = Callable[..., Any]


@dataclass
class TrainingSet:
    """The labels a version learns from, with their triples (in label order)."""

    chunk: TripleChunk
    labels: np.ndarray  # int64, 1 acceptable / 0 not
    positives: int
    relations: dict[int, int]  # relation id -> index (unknown relations: len(relations))
    verbalizations: dict[int, tuple[str, str]]  # relation id -> (name, verbalization)

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class TrainedCritic:
    """What training left in the version's folder, and its held-out quality."""

    heldout: np.ndarray  # a score per label; NaN where the label has no honest score
    metrics: dict
    encoder_key: str


class LoadedCritic(ABC):
    """A version ready to score: `inputs` turns a chunk into what `score_inputs` reads,
    so reading the next chunk can overlap scoring this one."""

    version_id: int
    tier: str
    relations: dict[int, int]

    def prepare_for_corpus(self) -> None:  # noqa: B027 - a hook; most tiers need nothing
        """Before scoring a whole corpus (e.g. map a cache up front)."""

    @abstractmethod
    def inputs(self, chunk: TripleChunk, verbalizations: dict) -> Any: ...

    @abstractmethod
    def score_inputs(self, inputs: Any) -> np.ndarray: ...

    def score(self, chunk: TripleChunk, verbalizations: dict) -> np.ndarray:
        return self.score_inputs(self.inputs(chunk, verbalizations))


class CriticTier(ABC):
    """One way to build a critic. `name` is what `CriticConfig.tier` and
    `CriticVersion.tier` hold; `queue` is the Celery queue of its training and rescoring
    ("default" or "gpu"); `blas_threads`, when set, caps BLAS/OpenMP threads while it
    rescores a whole corpus; `shared_rescoring`: its rescoring is split into ranges of
    triples that every worker serving its queue shares (critic.services.ranges), rather
    than one job on one worker."""

    name: ClassVar[str]
    queue: ClassVar[str] = "default"
    blas_threads: ClassVar[int | None] = None
    shared_rescoring: ClassVar[bool] = False

    @abstractmethod
    def train(
        self, *, data: TrainingSet, encoder: str, folder: Path, progress: Progress | None = None
    ) -> TrainedCritic:
        """Train on the labels and save the model into `folder` (an absolute path)."""

    @abstractmethod
    def load(self, *, version_id: int, folder: Path, encoder: str) -> LoadedCritic:
        """The version saved in `folder` by `train`, ready to score."""
