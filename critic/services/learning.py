"""Learning campaigns started from the critic: labels where they teach the critic most.

Annotation samples; the critic knows where its line is. A campaign "near the line" gets the
thresholds of a filter preset (per relation where the preset has them) passed down as the
campaign's `sampling_params`; one "where the critic and the crowd disagree" needs nothing
but the corpus's labels and its scores. The dashboard's form, the API and
`manage.py learn_campaign` all call `learning_campaign_create`.
"""

from __future__ import annotations

from annotation.models import Campaign
from annotation.services.campaigns import campaign_create
from corpora.models import Corpus

from ..errors import CriticError
from ..models import FilterPreset
from .presets import preset_filter

LEARNING_SAMPLINGS = (Campaign.Sampling.NEAR_LINE, Campaign.Sampling.DISAGREEMENT)


def learning_sampling_params(*, preset: FilterPreset) -> dict:
    """What near-the-line sampling needs from a preset: its thresholds (refused when the
    corpus holds another version's scores, since the line would be in the wrong place)."""
    preset_filter(preset=preset)
    return {
        "threshold": preset.threshold,
        "relation_thresholds": dict(preset.relation_thresholds),
        "preset": preset.name,
        "version": preset.version.number,
    }


def learning_campaign_create(
    *,
    corpus: Corpus,
    sampling: str,
    name: str,
    size: int,
    preset: FilterPreset | None = None,
    judgments_per_item: int = 3,
    gold_share: float = 0.1,
    seed: int | None = None,
    created_by=None,
) -> Campaign:
    """A learning campaign of `size` triples drawn near `preset`'s line (`near_line`) or
    where the critic and the crowd disagree most (`disagreement`)."""
    if sampling not in LEARNING_SAMPLINGS:
        raise CriticError(
            f"A learning campaign from the critic samples {' or '.join(LEARNING_SAMPLINGS)}, "
            f"not {sampling!r}.",
            field="sampling",
        )
    params: dict = {}
    if sampling == Campaign.Sampling.NEAR_LINE:
        if preset is None:
            raise CriticError(
                "Near-the-line sampling draws around a filter preset's threshold: name one.",
                field="preset",
            )
        if preset.corpus_id != corpus.pk:
            raise CriticError(f"Preset '{preset.name}' is a preset of another corpus.")
        params = learning_sampling_params(preset=preset)
    return campaign_create(
        corpus=corpus,
        name=name,
        size=size,
        sampling=sampling,
        sampling_params=params,
        purpose=Campaign.Purpose.LEARNING,
        judgments_per_item=judgments_per_item,
        gold_share=gold_share,
        seed=seed,
        created_by=created_by,
    )
