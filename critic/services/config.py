"""A corpus's critic configuration (tier, encoder, retraining rule), and the artifact
store the critic writes into."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from corpora.models import Corpus

from ..models import CriticConfig


def artifact_root() -> Path:
    return Path(settings.ARTIFACT_ROOT)


def critic_config_get(*, corpus: Corpus) -> CriticConfig:
    config, _ = CriticConfig.objects.get_or_create(corpus=corpus)
    return config


def critic_config_update(*, corpus: Corpus, **fields) -> CriticConfig:
    config = critic_config_get(corpus=corpus)
    for name, value in fields.items():
        setattr(config, name, value)
    config.full_clean()
    config.save()
    return config
