"""The bounds of a run's settings, checked by the run service whichever door asked for
the run (the page's form and the API's serializer show the same bounds first)."""

from __future__ import annotations

from core.limits import MAX_SEED, bounds_check

from .errors import GenerationError

RUN_LIMITS: dict[str, tuple[float, float]] = {
    "event_prompts": (0, 1_000_000),
    "n_per_pair": (1, 100),
    "k_examples": (0, 50),
    "seed": (-MAX_SEED - 1, MAX_SEED),
    "temperature": (0.0, 2.0),
    "top_p": (0.0, 1.0),
    "max_tokens": (1, 32_768),
}


def run_settings_check(**values) -> None:
    """GenerationError naming the first setting out of its bounds, in the words Django's
    validators use (so the page, the API and the CLI say the same; the form and the
    serializer take their bounds from RUN_LIMITS)."""
    bounds_check(RUN_LIMITS, error=GenerationError, **values)
