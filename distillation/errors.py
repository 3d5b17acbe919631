"""The refusal of the distillation app, an application error (core.errors)."""

from __future__ import annotations

from core.errors import AppError


class DistillationError(AppError):
    pass
