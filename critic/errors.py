"""The critic's errors: `CriticError` for any rule of the critic the input breaks (a
subclass of the one application error, `core.errors.AppError`)."""

from __future__ import annotations

from core.errors import AppError


class CriticError(AppError):
    """A rule of the critic broken: too few labels, a version that cannot be activated,
    a preset that cuts another version's scores, an encoder that does not load."""


class UnknownTierError(CriticError):
    """A critic tier that is not in the registry (`critic.tiers.TIERS`)."""
