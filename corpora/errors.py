"""What corpora's services refuse, as application errors (core.errors)."""

from core.errors import AppError


class CorpusError(AppError):
    pass
