"""The stacked tier: both tiers trained on the same labels, and a stacker on their scores
(critic.ml.stacking), used only where it beats each tier alone on labels that both scored
out of sample; otherwise the version scores with the better tier alone. Trains and
rescores on the `gpu` queue, as the cross-encoder does."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..ml.stacking import STACKED, Stacker, stack_tiers
from .base import CriticTier, LearningOptions, LoadedCritic, Progress, TrainedCritic, TrainingSet
from .cross_encoder import CrossEncoderTier, LoadedCrossEncoder
from .fast import FastTier, LoadedFastCritic

STACK_FILE = "stack.json"
FAST_FOLDER = "fast"
CROSS_FOLDER = "cross"


@dataclass
class LoadedStackedCritic(LoadedCritic):
    version_id: int
    tier: str
    relations: dict[int, int]
    chosen: str
    fast: LoadedFastCritic | None
    cross: LoadedCrossEncoder | None
    stacker: Stacker | None
    options: LearningOptions = field(default_factory=LearningOptions)

    def prepare_for_corpus(self) -> None:
        if self.fast is not None:
            self.fast.prepare_for_corpus()

    def inputs(self, chunk, verbalizations: dict):
        """Only what the chosen way reads: a tier that lost is not run at all."""
        return (
            self.fast.inputs(chunk, verbalizations) if self.fast is not None else None,
            self.cross.inputs(chunk, verbalizations) if self.cross is not None else None,
        )

    def score_inputs(self, inputs) -> np.ndarray:
        fast_inputs, cross_inputs = inputs
        fast = self.fast.score_inputs(fast_inputs) if self.fast is not None else None
        cross = self.cross.score_inputs(cross_inputs) if self.cross is not None else None
        if self.stacker is not None:
            return self.stacker.predict(fast, cross).astype(np.float32)
        return np.asarray(fast if fast is not None else cross, dtype=np.float32)


class StackedTier(CriticTier):
    name = "stacked"
    queue = "gpu"
    blas_threads = None
    shared_rescoring = True
    members = ("fast", "cross-encoder")

    def train(
        self, *, data: TrainingSet, encoder: str, folder: Path, progress: Progress | None = None
    ) -> TrainedCritic:
        from ..ml.metrics import classification_metrics

        if progress:
            progress(0, None, "training the fast tier", force=True)
        fast = FastTier().train(
            data=self._member_data(data, "fast"), encoder=encoder, folder=folder / FAST_FOLDER
        )
        cross = CrossEncoderTier().train(
            data=self._member_data(data, "cross-encoder"),
            encoder=encoder,
            folder=folder / CROSS_FOLDER,
            progress=progress,
        )
        # Labels the cross-encoder held out: both tiers scored them out of sample.
        shared = ~np.isnan(cross.heldout)
        stack = stack_tiers(fast.heldout[shared], cross.heldout[shared], data.labels[shared])
        if stack.chosen == "fast":
            heldout = fast.heldout
        elif stack.chosen == "cross-encoder":
            heldout = cross.heldout
        else:
            heldout = np.full(len(data), np.nan)
            heldout[shared] = stack.heldout_scores
        (folder / STACK_FILE).write_text(
            json.dumps(
                {
                    "chosen": stack.chosen,
                    "stacker": stack.stacker.as_dict() if stack.stacker else None,
                    "roc_auc": stack.roc_auc,
                    "labels": stack.labels,
                },
                sort_keys=True,
            )
        )
        evaluated = ~np.isnan(heldout)
        metrics = classification_metrics(data.labels[evaluated], heldout[evaluated])
        metrics["chosen"] = stack.chosen
        metrics["tier_roc_auc"] = stack.roc_auc
        metrics["tier_labels"] = stack.labels
        return TrainedCritic(heldout, metrics, fast.encoder_key)

    @staticmethod
    def _member_data(data: TrainingSet, member: str) -> TrainingSet:
        """The labels as `member` learns them alone (e.g. the name swap on for the
        cross-encoder and off for the fast head when the setting leaves it to each)."""
        options = data.member_options.get(member)
        return data if options is None else replace(data, options=options, member_options={})

    def load(self, *, version_id: int, folder: Path, encoder: str) -> LoadedStackedCritic:
        saved = json.loads((folder / STACK_FILE).read_text())
        chosen = saved["chosen"]
        fast = (
            FastTier().load(version_id=version_id, folder=folder / FAST_FOLDER, encoder=encoder)
            if chosen in (STACKED, "fast")
            else None
        )
        cross = (
            CrossEncoderTier().load(
                version_id=version_id, folder=folder / CROSS_FOLDER, encoder=encoder
            )
            if chosen in (STACKED, "cross-encoder")
            else None
        )
        member = fast or cross
        return LoadedStackedCritic(
            version_id=version_id,
            tier=self.name,
            relations=member.relations,
            chosen=chosen,
            fast=fast,
            cross=cross,
            stacker=Stacker.from_dict(saved["stacker"]) if saved["stacker"] else None,
            options=member.options,
        )
