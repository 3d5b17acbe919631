"""Critic tiers, registered by name.

A tier (`base.CriticTier`) trains a version, loads it from disk and scores triples with
it; it says which Celery queue its jobs run on. Services look a tier up here by the name
a `CriticConfig` or `CriticVersion` holds, and never branch on the name themselves.

A new tier is one module beside `fast.py` and one line in `TIERS` below (and its choice
in `CriticConfig.Tier`, which the database column is validated against).
"""

from __future__ import annotations

from ..errors import UnknownTierError
from .base import CriticTier, LearningOptions, LoadedCritic, TrainedCritic, TrainingSet
from .cross_encoder import CrossEncoderTier
from .fast import FastTier
from .stacked import StackedTier

TIERS: dict[str, CriticTier] = {
    tier.name: tier
    for tier in (
        FastTier(),
        CrossEncoderTier(),
        StackedTier(),
    )
}


def tier_get(name: str) -> CriticTier:
    """The registered tier of that name; UnknownTierError (a CriticError) otherwise."""
    try:
        return TIERS[name]
    except KeyError:
        raise UnknownTierError(
            f"Unknown critic tier {name!r}; the known tiers are {', '.join(TIERS)}.",
            field="tier",
        ) from None


__all__ = [
    "TIERS",
    "CriticTier",
    "LearningOptions",
    "LoadedCritic",
    "TrainedCritic",
    "TrainingSet",
    "UnknownTierError",
    "tier_get",
]
