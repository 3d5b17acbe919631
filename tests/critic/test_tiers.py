"""Critic tiers come from one registry: each tier is found by its name, and a name the
registry does not know is refused (never run as another tier's code)."""

import pytest

from core.errors import AppError
from critic.errors import CriticError, UnknownTierError
from critic.models import CriticConfig, CriticVersion
from critic.services.config import critic_config_get
from critic.services.loading import critic_load
from critic.services.training import critic_train, critic_train_job_create
from critic.tiers import TIERS, CriticTier, tier_get


def test_the_registry_lists_the_tiers_the_configuration_offers():
    assert set(TIERS) == {"fast", "cross-encoder", "stacked"} == set(CriticConfig.Tier.values)
    for name, tier in TIERS.items():
        assert isinstance(tier, CriticTier) and tier.name == name and tier_get(name) is tier
    assert tier_get("fast").queue == "default"
    assert tier_get("cross-encoder").queue == "gpu"
    assert tier_get("stacked").queue == "gpu" and tier_get("stacked").shared_rescoring


def test_an_unknown_tier_is_refused_naming_it_and_the_known_ones():
    with pytest.raises(UnknownTierError) as caught:
        tier_get("tfidf")
    message = str(caught.value)
    assert "'tfidf'" in message and "fast" in message and "cross-encoder" in message
    assert isinstance(caught.value, CriticError) and isinstance(caught.value, AppError)


@pytest.mark.django_db
def test_training_or_loading_with_an_unknown_tier_is_refused(labelled_corpus):
    config = critic_config_get(corpus=labelled_corpus)
    CriticConfig.objects.filter(pk=config.pk).update(tier="tfidf")
    with pytest.raises(UnknownTierError, match="tfidf"):
        critic_train(corpus=labelled_corpus, queue_rescore=False)
    with pytest.raises(UnknownTierError, match="tfidf"):
        critic_train_job_create(corpus=labelled_corpus)
    assert not CriticVersion.objects.filter(corpus=labelled_corpus).exists()

    CriticConfig.objects.filter(pk=config.pk).update(tier="fast")
    version = critic_train(corpus=labelled_corpus, queue_rescore=False)
    CriticVersion.objects.filter(pk=version.pk).update(tier="tfidf")
    version.refresh_from_db()
    with pytest.raises(UnknownTierError, match="tfidf"):
        critic_load(version)
