"""What a critic tier is: how it trains a version, loads one from disk and scores
triples with it. Each tier is a module of this package, registered in `__init__.py`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:
    from ..corpus_data import TripleChunk

Progress = Callable[..., Any]


LABEL_WEIGHTINGS = ("hard", "weighted", "soft")


@dataclass(frozen=True)
class LearningOptions:
    """How a version learns, saved beside it (the scoring must match the training).

    `name_draws`: 0 reads PersonX/PersonY as written; n > 0 is the paper's name swap:
    each label is learned in n copies with names drawn in (`ml.texts`), and a triple's
    score is the mean over the same n draws. `label_weighting`: "hard" counts every label
    fully; "weighted" weighs each by the probability that it is right (the Dawid-Skene
    posterior); "soft" learns that probability of "acceptable" as the target."""

    name_draws: int = 0
    label_weighting: str = "hard"

    def __post_init__(self) -> None:
        if self.name_draws < 0:
            raise ValueError("name_draws must be 0 (off) or more")
        if self.label_weighting not in LABEL_WEIGHTINGS:
            raise ValueError(f"label_weighting must be one of {', '.join(LABEL_WEIGHTINGS)}")

    @property
    def draws(self) -> list[int | None]:
        """The name-swap draws to read each triple in (None: names as written)."""
        return list(range(self.name_draws)) if self.name_draws else [None]

    def as_dict(self) -> dict:
        return {"name_draws": self.name_draws, "label_weighting": self.label_weighting}

    @classmethod
    def from_dict(cls, data: dict) -> LearningOptions:
        """From `as_dict` (a version saved before these options: the defaults)."""
        return cls(
            name_draws=int(data.get("name_draws", 0)),
            label_weighting=str(data.get("label_weighting", "hard")),
        )


@dataclass
class TrainingSet:
    """The labels a version learns from, with their triples (in label order)."""

    chunk: TripleChunk
    labels: np.ndarray  # int64, 1 acceptable / 0 not
    positives: int
    relations: dict[int, int]  # relation id -> index (unknown relations: len(relations))
    verbalizations: dict[int, tuple[str, str]]  # relation id -> (name, verbalization)
    # The probability that each label is right (Dawid-Skene posterior; 1 adjudicated);
    # None: every label certain.
    confidence: np.ndarray | None = None
    options: LearningOptions = field(default_factory=LearningOptions)
    # A tier made of other tiers (`members`): how each of them learns, by tier name.
    member_options: dict[str, LearningOptions] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    def _certainty(self) -> np.ndarray:
        if self.confidence is None:
            return np.ones(len(self))
        return np.clip(np.asarray(self.confidence, dtype=np.float64), 0.5, 1.0)

    @property
    def targets(self) -> np.ndarray | None:
        """P(acceptable) per label to learn ("soft"), or None (learn the labels)."""
        if self.options.label_weighting != "soft":
            return None
        certainty = self._certainty()
        return np.where(self.labels > 0, certainty, 1.0 - certainty)

    @property
    def sample_weight(self) -> np.ndarray | None:
        """A weight per label ("weighted"): its certainty, rescaled to a mean of 1 so that
        a model's regularization weighs the same against the data; or None (each label
        counts fully)."""
        if self.options.label_weighting != "weighted":
            return None
        certainty = self._certainty()
        return certainty * (len(certainty) / certainty.sum())


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
    options: LearningOptions

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
    # Whether the name swap is on when the setting leaves it to the tier (measured on the
    # proxy task: docs/performance.md, name swap).
    name_swap_default: ClassVar[bool] = False
    # The tiers this one trains inside it (each learning as it would alone).
    members: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def train(
        self, *, data: TrainingSet, encoder: str, folder: Path, progress: Progress | None = None
    ) -> TrainedCritic:
        """Train on the labels and save the model into `folder` (an absolute path)."""

    @abstractmethod
    def load(self, *, version_id: int, folder: Path, encoder: str) -> LoadedCritic:
        """The version saved in `folder` by `train`, ready to score."""
