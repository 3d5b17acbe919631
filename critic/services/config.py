"""A corpus's critic configuration (tier, encoder, retraining rule), and the artifact
store the critic writes into."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError

from corpora.models import Corpus

from ..errors import CriticError
from ..limits import config_settings_check
from ..models import CriticConfig


def artifact_root() -> Path:
    return Path(settings.ARTIFACT_ROOT)


def critic_config_get(*, corpus: Corpus) -> CriticConfig:
    config, _ = CriticConfig.objects.get_or_create(corpus=corpus)
    return config


def critic_config_update(*, corpus: Corpus, **fields) -> CriticConfig:
    """Change a corpus's critic settings (tier, encoder, auto_retrain, retrain_every,
    name_swap, name_draws, label_weighting); CriticError naming the first that breaks its
    rule, and nothing saved."""
    config_settings_check(**fields)
    config = critic_config_get(corpus=corpus)
    for name, value in fields.items():
        setattr(config, name, value)
    try:
        config.full_clean()
    except ValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        raise CriticError(messages[0], field=field) from None
    config.save()
    return config
