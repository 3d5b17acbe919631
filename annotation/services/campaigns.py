"""Campaigns: create one (its items and gold in one transaction), grow it, open or close it."""

from __future__ import annotations

import random
from pathlib import Path

from django.core.exceptions import ValidationError
from django.db import transaction

from corpora.models import Corpus

from ..errors import AnnotationError, SamplingError
from ..limits import campaign_settings_check
from ..models import Campaign
from ..sampling import choose, corpus_candidates, design_weights
from .gold import gold_add_from_reference, gold_add_swapped
from .items import _insert_items, _next_position, _refresh_item_counts

GOLD_POOL_MAX = 1000
GOLD_POOL_MIN = 20


def _add_triples(*, campaign: Campaign, size: int) -> int:
    candidates = corpus_candidates(corpus_id=campaign.corpus_id, exclude_campaign_id=campaign.pk)
    seed = campaign.seed + campaign.item_count  # a grown campaign draws new numbers
    try:
        picked = choose(candidates=candidates, size=size, sampling=campaign.sampling, seed=seed)
    except SamplingError as exc:
        # A plain refusal, as it always was to the API (code "refused").
        raise AnnotationError(str(exc)) from exc
    return _insert_items(
        campaign=campaign,
        triple_ids=candidates.ids[picked],
        weights=design_weights(candidates=candidates, picked=picked, sampling=campaign.sampling),
        first_position=_next_position(campaign),
    )


def campaign_create(
    *,
    corpus: Corpus,
    name: str,
    size: int,
    sampling: str = Campaign.Sampling.UNIFORM,
    purpose: str = Campaign.Purpose.LEARNING,
    judgments_per_item: int = 3,
    gold_share: float = 0.1,
    gold_threshold: float = 0.7,
    gold_min_answers: int = 5,
    lease_seconds: int = 600,
    instructions: str = "",
    seed: int | None = None,
    gold_reference: str | Path | None = None,
    gold_count: int | None = None,
    items_per_session: int | None = None,
    training_size: int = 0,
    qualification_threshold: float = 0.8,
    training_tries: int = 2,
    straight_line_run: int = 15,
    speed_floor: float = 0.25,
    created_by=None,
) -> Campaign:
    """Create a campaign and materialize its items (and gold) in one transaction."""
    campaign_settings_check(
        name=name,
        sampling=sampling,
        purpose=purpose,
        size=size,
        judgments_per_item=judgments_per_item,
        gold_share=gold_share,
        gold_threshold=gold_threshold,
        gold_min_answers=gold_min_answers,
        lease_seconds=lease_seconds,
        seed=seed,
        items_per_session=items_per_session,
        training_size=training_size,
        qualification_threshold=qualification_threshold,
        training_tries=training_tries,
        straight_line_run=straight_line_run,
        speed_floor=speed_floor,
    )
    campaign = Campaign(
        corpus=corpus,
        name=name,
        sampling=sampling,
        purpose=purpose,
        judgments_per_item=judgments_per_item,
        gold_share=gold_share,
        gold_threshold=gold_threshold,
        gold_min_answers=gold_min_answers,
        lease_seconds=lease_seconds,
        instructions=instructions,
        items_per_session=items_per_session,
        training_size=training_size,
        qualification_threshold=qualification_threshold,
        training_tries=training_tries,
        straight_line_run=straight_line_run,
        speed_floor=speed_floor,
        seed=random.randrange(2**31) if seed is None else seed,
        created_by=created_by,
    )
    try:
        campaign.full_clean()
    except ValidationError as exc:
        raise AnnotationError(
            "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items()),
            field=next(iter(exc.message_dict), None),
        ) from exc
    with transaction.atomic():
        campaign.save()
        added = _add_triples(campaign=campaign, size=size)
        if not added:
            raise AnnotationError(f"Corpus '{corpus.name}' has no triples to sample.")
        if gold_share > 0:
            wanted = gold_count or min(GOLD_POOL_MAX, max(GOLD_POOL_MIN, round(size * gold_share)))
            # Training rounds draw their own gold, and leave the rest for the gold checks.
            wanted = max(
                wanted, training_size * training_tries + GOLD_POOL_MIN * bool(training_size)
            )
            if gold_reference:
                gold_add_from_reference(
                    campaign=campaign, path=gold_reference, count=(wanted + 1) // 2
                )
                wanted -= (wanted + 1) // 2
            gold_add_swapped(campaign=campaign, count=wanted, reference=gold_reference)
        _refresh_item_counts(campaign)
    return campaign


def campaign_grow(*, campaign: Campaign, size: int) -> int:
    """Add up to `size` more triples of the corpus, not already in the campaign."""
    campaign_settings_check(size=size)
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        added = _add_triples(campaign=campaign, size=size)
        _refresh_item_counts(campaign)
    return added


def campaign_set_status(*, campaign: Campaign, status: str) -> Campaign:
    Campaign.objects.filter(pk=campaign.pk).update(status=status)
    campaign.status = status
    return campaign
