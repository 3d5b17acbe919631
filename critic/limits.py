"""The rules of a critic's settings and of a filter preset, checked by the critic's
services whichever door asked (the page's forms and the API's serializers take the same
bounds from here)."""

from __future__ import annotations

from core.limits import bounds_check, choice_check, text_check

from .errors import CriticError
from .models import CriticConfig, FilterPreset

ENCODER_MAX = CriticConfig._meta.get_field("encoder").max_length
PRESET_NAME_MAX = FilterPreset._meta.get_field("name").max_length
CONFIG_LIMITS: dict[str, tuple[float | None, float | None]] = {
    "retrain_every": (1, 2**31 - 1),
    "name_draws": (1, 20),
}
PRESET_LIMITS: dict[str, tuple[float | None, float | None]] = {
    "threshold": (0.0, 1.0),
    "target_precision": (0.0, 1.0),
}


def config_settings_check(
    *,
    tier: str | None = None,
    encoder: str | None = None,
    label_weighting: str | None = None,
    **values,
) -> None:
    """CriticError naming the first setting that breaks its rule, in the words of the
    dashboard's settings form."""
    if tier is not None:
        choice_check(tier, CriticConfig.Tier.values, field="tier", error=CriticError)
    if label_weighting is not None:
        choice_check(
            label_weighting,
            CriticConfig.LabelWeighting.values,
            field="label_weighting",
            error=CriticError,
        )
    if encoder is not None:
        text_check(encoder, max_length=ENCODER_MAX, field="encoder", error=CriticError)
    values.pop("auto_retrain", None)
    values.pop("name_swap", None)
    bounds_check(CONFIG_LIMITS, error=CriticError, **values)


def preset_settings_check(
    *,
    name: str,
    threshold: float,
    relation_thresholds: dict[str, float] | None = None,
    target_precision: float | None = None,
) -> None:
    text_check(name, max_length=PRESET_NAME_MAX, field="name", error=CriticError)
    bounds_check(
        PRESET_LIMITS, error=CriticError, threshold=threshold, target_precision=target_precision
    )
    for value in (relation_thresholds or {}).values():
        try:
            bounds_check(PRESET_LIMITS, error=CriticError, threshold=value)
        except CriticError as exc:
            raise CriticError(exc.message, field="relation_thresholds") from None
