"""The rules of a campaign's settings, checked by the campaign services whichever door
asked (the page's form and the API's serializer take the same bounds from here)."""

from __future__ import annotations

from core.limits import MAX_SEED, bounds_check, choice_check, text_check

from .errors import AnnotationError
from .models import Campaign

CAMPAIGN_NAME_MAX = Campaign._meta.get_field("name").max_length
CAMPAIGN_LIMITS: dict[str, tuple[float | None, float | None]] = {
    "size": (1, 10_000_000),
    "judgments_per_item": (1, 20),
    "gold_share": (0.0, 0.5),
    "gold_threshold": (0.0, 1.0),
    "gold_min_answers": (0, 1000),
    "lease_seconds": (10, 24 * 3600),
    "seed": (0, MAX_SEED),
    # Crowd studies: sessions, training and qualification, honesty checks.
    "items_per_session": (1, 10_000),
    "training_size": (0, 50),
    "qualification_threshold": (0.0, 1.0),
    "training_tries": (1, 10),
    "straight_line_run": (5, 1000),
    "speed_floor": (0.0, 1.0),
}
# What a newcomer's training is drawn from: without gold there is nothing to train on.
TRAINING_NEEDS_GOLD = "Training is drawn from the gold items: set a gold share above 0."


def campaign_settings_check(
    *, name: str | None = None, sampling: str | None = None, purpose: str | None = None, **values
) -> None:
    """AnnotationError naming the first setting that breaks its rule, in the words the
    page's form uses (so the page, the API and the CLI say the same)."""
    if name is not None:
        text_check(name, max_length=CAMPAIGN_NAME_MAX, field="name", error=AnnotationError)
    bounds_check(CAMPAIGN_LIMITS, error=AnnotationError, **values)
    if sampling is not None:
        choice_check(sampling, Campaign.Sampling.values, field="sampling", error=AnnotationError)
    if purpose is not None:
        choice_check(purpose, Campaign.Purpose.values, field="purpose", error=AnnotationError)
    if values.get("training_size") and values.get("gold_share") == 0:
        raise AnnotationError(TRAINING_NEEDS_GOLD, field="training_size")
