"""The refusal of the distillation app."""

from __future__ import annotations


class DistillationError(Exception):
    pass
