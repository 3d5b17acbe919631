"""Campaigns: create one (its items and gold in one transaction), grow it, open or close it."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from django.core.exceptions import ValidationError
from django.db import transaction

from core.limits import choice_check
from corpora.models import Corpus

from ..errors import AnnotationError, SamplingError
from ..limits import campaign_settings_check
from ..models import Campaign, Item
from ..sampling import choose, corpus_candidates, design_weights, strategy_prepared
from ..sources import SOURCES
from .gold import gold_add_from_reference, gold_add_swapped
from .items import _insert_items, _next_position, _refresh_item_counts

GOLD_POOL_MAX = 1000
GOLD_POOL_MIN = 20


def _add_triples(*, campaign: Campaign, size: int) -> int:
    try:
        strategy = strategy_prepared(
            sampling=campaign.sampling,
            corpus_id=campaign.corpus_id,
            params=campaign.sampling_params,
        )
        candidates = corpus_candidates(
            corpus_id=campaign.corpus_id, exclude_campaign_id=campaign.pk
        )
        seed = campaign.seed + campaign.item_count  # a grown campaign draws new numbers
        picked = choose(candidates=candidates, size=size, sampling=strategy, seed=seed)
    except SamplingError as exc:
        # A plain refusal, as it always was to the API (code "refused").
        raise AnnotationError(str(exc), field=exc.field) from exc
    return _insert_items(
        campaign=campaign,
        triple_ids=candidates.ids[picked],
        weights=design_weights(candidates=candidates, picked=picked, sampling=strategy),
        first_position=_next_position(campaign),
    )


def _campaign_built(*, seed: int | None, **fields) -> Campaign:
    """An unsaved campaign with `fields`, checked by the model's own validators (a random
    seed when none is given)."""
    campaign = Campaign(seed=random.randrange(2**31) if seed is None else seed, **fields)
    try:
        campaign.full_clean()
    except ValidationError as exc:
        raise AnnotationError(
            "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items()),
            field=next(iter(exc.message_dict), None),
        ) from exc
    return campaign


def campaign_create(
    *,
    corpus: Corpus,
    name: str,
    size: int,
    sampling: str = Campaign.Sampling.UNIFORM,
    sampling_params: Mapping[str, Any] | None = None,
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
    """Create a campaign and materialize its items (and gold) in one transaction.

    `sampling_params` is what the sampling needs beyond its name, kept on the campaign
    so that growing it samples alike: near the line, the `threshold` and
    `relation_thresholds` ({relation name: threshold}) of the filter preset the critic
    passes in (and the `preset`'s name, for people to read)."""
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
    campaign = _campaign_built(
        corpus=corpus,
        name=name,
        sampling=sampling,
        sampling_params=dict(sampling_params or {}),
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
        seed=seed,
        created_by=created_by,
    )
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


SOURCE_UPDATE_CHUNK = 500


def campaign_create_from_triples(
    *,
    corpus: Corpus,
    name: str,
    triples: Sequence[tuple[int, str]],
    sampling: str = Campaign.Sampling.UNIFORM,
    purpose: str = Campaign.Purpose.AUDIT,
    judgments_per_item: int = 3,
    gold_share: float = 0.1,
    lease_seconds: int = 600,
    instructions: str = "",
    seed: int | None = None,
    created_by=None,
) -> Campaign:
    """A campaign over triples chosen by the caller, as (triple id, source) pairs: each
    triple once (a repeat keeps its first source), handed out in an order shuffled by the
    seed, so that items of different sources interleave; the same seed gives the same order.

    `source` is recorded on the item (`Item.source`: "student", "teacher", "both" or "")
    and never shown to annotators. A triple may belong to another corpus than `corpus`
    (a blind evaluation mixes the teacher's tails into a campaign of the student's corpus).
    Items weigh 1 (the caller's choice is no probability sample of the corpus). Gold is made
    as `campaign_create` makes it without a reference file: tails swapped between the
    campaign's own items, so gold reads like the rest."""
    chosen: dict[int, str] = {}
    for triple_id, source in triples:
        choice_check(source, ("", *SOURCES), field="source", error=AnnotationError)
        chosen.setdefault(int(triple_id), source)
    if not chosen:
        raise AnnotationError("There are no triples to judge.", field="size")
    campaign_settings_check(
        name=name,
        sampling=sampling,
        purpose=purpose,
        size=len(chosen),
        judgments_per_item=judgments_per_item,
        gold_share=gold_share,
        lease_seconds=lease_seconds,
        seed=seed,
    )
    campaign = _campaign_built(
        corpus=corpus,
        name=name,
        sampling=sampling,
        purpose=purpose,
        judgments_per_item=judgments_per_item,
        gold_share=gold_share,
        lease_seconds=lease_seconds,
        instructions=instructions,
        seed=seed,
        created_by=created_by,
    )
    ids = list(chosen)
    random.Random(campaign.seed).shuffle(ids)
    with transaction.atomic():
        campaign.save()
        added = _insert_items(
            campaign=campaign,
            triple_ids=np.array(ids, dtype=np.int64),
            weights=np.ones(len(ids)),
            first_position=0,
        )
        if not added:
            raise AnnotationError("None of those triples exists.", field="size")
        by_source: dict[str, list[int]] = {}
        for triple_id, source in chosen.items():
            if source:
                by_source.setdefault(source, []).append(triple_id)
        for source, triple_ids in by_source.items():
            for start in range(0, len(triple_ids), SOURCE_UPDATE_CHUNK):
                Item.objects.filter(
                    campaign=campaign, triple_id__in=triple_ids[start : start + SOURCE_UPDATE_CHUNK]
                ).update(source=source)
        if gold_share > 0:
            wanted = min(GOLD_POOL_MAX, max(GOLD_POOL_MIN, round(added * gold_share)))
            gold_add_swapped(campaign=campaign, count=wanted)
        _refresh_item_counts(campaign)
    return campaign
