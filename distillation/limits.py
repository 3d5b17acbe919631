"""The rules of a student run's settings and of an evaluation's, checked by the services
whichever door asked (the pages' forms and the API's serializers take the same bounds and
the same decoding rules from here)."""

from __future__ import annotations

from annotation.limits import CAMPAIGN_LIMITS
from core.limits import MAX_SEED, bounds_check, choice_check, text_check

from .errors import DistillationError
from .models import StudentEvaluation, StudentRun

DEVICES = ("auto", "cpu", "cuda")
SEED_LIMITS = (-MAX_SEED - 1, MAX_SEED)
RUN_LIMITS: dict[str, tuple[float | None, float | None]] = {
    "epochs": (0.01, None),
    "learning_rate": (0.0, None),
    "batch_size": (1, None),
    "grad_accum": (1, None),
    "max_length": (8, 4096),
    "max_steps": (0, None),
    "save_every": (1, None),
    "seed": SEED_LIMITS,
}
EVALUATION_LIMITS: dict[str, tuple[float | None, float | None]] = {
    "max_heads": (1, None),
    "n_per_pair": (1, None),
    "num_beams": (1, None),
    "max_new_tokens": (1, 4096),
    "temperature": (0.0, None),
    "top_p": (0.0, 1.0),
    "seed": SEED_LIMITS,
}
# Sending an evaluation's outputs to annotation: a campaign's bounds, in annotation's words.
SEND_LIMITS: dict[str, tuple[float | None, float | None]] = {
    name: CAMPAIGN_LIMITS[name] for name in ("size", "judgments_per_item", "gold_share", "seed")
}
SAMPLING_TEMPERATURE = "Sampling needs a temperature > 0."
SAMPLING_TOP_P = "Top p is a probability mass in (0, 1]."


def _max_length(model, field: str) -> int:
    return model._meta.get_field(field).max_length


def run_settings_check(
    *,
    name: str,
    base_model: str,
    train_split: str = "train",
    device: str | None = None,
    **values,
) -> None:
    """DistillationError naming the first setting of a run that breaks its rule, in the
    words of the run form (so the page, the API and the CLI say the same)."""
    text_check(
        name, max_length=_max_length(StudentRun, "name"), field="name", error=DistillationError
    )
    text_check(
        base_model,
        max_length=_max_length(StudentRun, "base_model"),
        field="base_model",
        error=DistillationError,
    )
    text_check(
        train_split,
        max_length=_max_length(StudentRun, "train_split"),
        field="train_split",
        error=DistillationError,
    )
    bounds_check(
        RUN_LIMITS, error=DistillationError, **{k: v for k, v in values.items() if k in RUN_LIMITS}
    )
    if device is not None:
        choice_check(device, DEVICES, field="device", error=DistillationError)


def decoding_check(*, decoding: str, temperature: float | None, top_p: float | None) -> None:
    """Sampling needs a temperature above 0 and some probability mass (greedy and beam search
    use neither)."""
    if decoding != StudentEvaluation.Decoding.SAMPLE:
        return
    if temperature is not None and temperature <= 0.0:
        raise DistillationError(SAMPLING_TEMPERATURE, field="temperature")
    if top_p is not None and top_p <= 0.0:
        raise DistillationError(SAMPLING_TOP_P, field="top_p")


def evaluation_settings_check(*, decoding: str, **values) -> None:
    """DistillationError naming the first setting of an evaluation that breaks its rule."""
    choice_check(
        decoding, StudentEvaluation.Decoding.values, field="decoding", error=DistillationError
    )
    bounds_check(EVALUATION_LIMITS, error=DistillationError, **values)
    decoding_check(
        decoding=decoding, temperature=values.get("temperature"), top_p=values.get("top_p")
    )


def send_settings_check(**values) -> None:
    """DistillationError naming the first setting of a send to annotation (size, judgments
    per item, gold share, seed) out of its campaign bound."""
    bounds_check(SEND_LIMITS, error=DistillationError, **values)
