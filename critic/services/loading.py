"""A critic version's model, loaded from its artifact by its tier, ready to score."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from ..models import CriticVersion
from ..tiers import LoadedCritic, tier_get
from .config import artifact_root


@lru_cache(maxsize=4)
def _load_critic_cached(version_id: int, artifact: str, tier: str, encoder: str) -> LoadedCritic:
    return tier_get(tier).load(version_id=version_id, folder=Path(artifact), encoder=encoder)


def critic_load(version: CriticVersion) -> LoadedCritic:
    """The version's model (kept for the process: a few versions at a time)."""
    path = str(artifact_root() / version.artifact)
    return _load_critic_cached(version.pk, path, version.tier, version.encoder)
