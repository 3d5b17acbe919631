"""What generation's services refuse, as application errors (core.errors)."""

from core.errors import AppError


class GenerationError(AppError):
    pass


class RunBusy(GenerationError):
    """Another process holds the run's lease."""

    status = 409
    code = "run_busy"


class RunRefused(GenerationError):
    """The run cannot start now (under way, finished, or nothing left to send)."""

    status = 409
    code = "run_refused"
