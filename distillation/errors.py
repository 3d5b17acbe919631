"""The refusal of the distillation app, an application error (core.errors)."""

from __future__ import annotations

from core.errors import AppError


class DistillationError(AppError):
    pass


class StudentArtifactError(DistillationError):
    """A run whose model files in the artifact store are not the ones trained for it: it
    is not loaded."""

    status = 409
    code = "artifact_mismatch"
