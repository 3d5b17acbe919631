"""The critic's errors: `CriticError` for any rule of the critic the input breaks (a
subclass of the one application error, `core.errors.AppError`)."""

from __future__ import annotations

from core.errors import AppError


class CriticError(AppError):
    """A rule of the critic broken: too few labels, a version that cannot be activated,
    a preset that cuts another version's scores, an encoder that does not load."""


class UnknownTierError(CriticError):
    """A critic tier that is not in the registry (`critic.tiers.TIERS`)."""


class CriticArtifactError(CriticError):
    """A version whose files in the artifact store are not the ones saved for it (another
    database's critic written over them, a file changed or gone): it is not loaded."""

    status = 409
    code = "artifact_mismatch"
