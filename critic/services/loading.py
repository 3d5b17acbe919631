"""A critic version's model, loaded from its artifact by its tier, ready to score; the
artifact's files checked first against the checksum on the version's row."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from core.artifacts import artifact_mismatch

from ..errors import CriticArtifactError
from ..models import CriticVersion
from ..tiers import LoadedCritic, tier_get
from .config import artifact_root


@lru_cache(maxsize=4)
def _load_critic_cached(
    artifact_key: str, version_id: int, artifact: str, tier: str, encoder: str
) -> LoadedCritic:
    return tier_get(tier).load(version_id=version_id, folder=Path(artifact), encoder=encoder)


def critic_artifact_check(version: CriticVersion) -> Path:
    """The version's folder, once its files match the checksum on its row (versions saved
    before checksums have none and are not checked); CriticArtifactError otherwise."""
    folder = artifact_root() / version.artifact
    if version.checksum:
        reason = artifact_mismatch(folder, version.checksum)
        if reason is not None:
            raise CriticArtifactError(
                f"Critic {version.label} of corpus {version.corpus_id} (artifact key "
                f"{version.artifact_key}) was not loaded from {folder}: {reason}. Its files "
                "are not the ones saved for it (another database sharing this artifact "
                "store, or a file changed or removed); train a new version."
            )
    return folder


def critic_load(version: CriticVersion) -> LoadedCritic:
    """The version's model (kept for the process: a few versions at a time), keyed by the
    version's artifact key so a reused id never hands back another version's model."""
    folder = critic_artifact_check(version)
    return _load_critic_cached(
        str(version.artifact_key), version.pk, str(folder), version.tier, version.encoder
    )
