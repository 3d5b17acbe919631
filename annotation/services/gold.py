"""Gold items: known-good triples from a reference file, known-bad ones made by swapping tails.

Gold must not stand out from the campaign's own items, or annotators learn to spot it: it
is drawn only from the relations the campaign's items have, and only from heads shaped like
theirs (no "___" blanks unless their heads have them). Each gold item keeps a short reason
for its answer (`gold_reason`), shown after a training answer.
"""

from __future__ import annotations

import random
from pathlib import Path

from corpora.formats import FormatError, detect_format, normalize_tail, open_binary, read_rows
from corpora.models import Event, Relation

from ..errors import AnnotationError
from ..models import Campaign, Item
from .items import _next_position


def _reference_triples(path: str | Path) -> list[tuple[str, str, str]]:
    """The reference file's triples, but for ATOMIC's "none" tails (no inference), which
    would make gold items that stand out from the campaign's own."""
    fmt = detect_format(path)
    opened = open_binary(path)
    try:
        rows = [
            (row.head, row.relation, row.tail)
            for row in read_rows(opened.stream, fmt)
            if not hasattr(row, "message") and normalize_tail(row.tail) != "none"
        ]
    finally:
        opened.close()
    if not rows:
        raise AnnotationError(f"{Path(path).name}: no readable triples for gold items.")
    return rows


def _relations_by_name(campaign: Campaign) -> dict[str, Relation]:
    """The relations gold may have: those of the campaign's own items."""
    used = _campaign_relation_ids(campaign)
    return {r.name.lower(): r for r in Relation.objects.all() if r.pk in used}


def _campaign_relation_ids(campaign: Campaign) -> set[int]:
    return set(
        Item.objects.filter(campaign=campaign, is_gold=False)
        .values_list("relation_id", flat=True)
        .distinct()
    )


BLANK = "___"


def _head_fits(campaign: Campaign):
    """A test of a head's shape: blanks only where the campaign's heads have blanks."""
    blanks = Item.objects.filter(
        campaign=campaign, is_gold=False, head__text__contains=BLANK
    ).exists()
    return lambda head: blanks or BLANK not in head


REFERENCE_REASON = "People wrote this inference for this event in {source}."
SWAP_REASON = "This tail was written for another event: {other}"


def _add_gold(
    *, campaign: Campaign, triples: list[tuple[int, int, str, str]], acceptable: bool, source: str
) -> int:
    """`triples`: (head id, relation id, tail, reason for the gold answer)."""
    if not triples:
        return 0
    rng = random.Random(campaign.seed + 7)
    top = _next_position(campaign)
    items = [
        Item(
            campaign=campaign,
            head_id=head_id,
            relation_id=relation_id,
            tail=tail,
            position=top + rng.randrange(10 * len(triples) + 1),
            is_gold=True,
            gold_acceptable=acceptable,
            gold_source=source,
            gold_reason=reason[:2000],
            slots_free=0,
        )
        for head_id, relation_id, tail, reason in triples
    ]
    Item.objects.bulk_create(items, batch_size=500)
    return len(items)


def _event_ids(texts: list[str]) -> dict[str, int]:
    Event.objects.bulk_create([Event(text=t) for t in set(texts)], ignore_conflicts=True)
    found: dict[str, int] = {}
    unique = list(set(texts))
    for start in range(0, len(unique), 500):
        found.update(
            Event.objects.filter(text__in=unique[start : start + 500]).values_list("text", "id")
        )
    return found


def gold_add_from_reference(*, campaign: Campaign, path: str | Path, count: int) -> int:
    """Known-good gold: human-written triples from a reference file (ATOMIC TSV, JSONL, ...)."""
    try:
        rows = _reference_triples(path)
    except FormatError as exc:
        raise AnnotationError(str(exc)) from exc
    relations = _relations_by_name(campaign)
    fits = _head_fits(campaign)
    usable = [
        (h, relations[r.lower()], t) for h, r, t in rows if r.lower() in relations and fits(h)
    ]
    if not usable:
        raise AnnotationError(
            f"{Path(path).name}: none of its triples has a relation of the campaign's items "
            "and a head shaped like theirs."
        )
    rng = random.Random(campaign.seed)
    picked = rng.sample(usable, min(count, len(usable)))
    ids = _event_ids([h for h, _, _ in picked])
    reason = REFERENCE_REASON.format(source=Path(path).name)
    return _add_gold(
        campaign=campaign,
        triples=[(ids[h], rel.pk, t, reason) for h, rel, t in picked],
        acceptable=True,
        source="reference",
    )


def gold_add_swapped(*, campaign: Campaign, count: int, reference: str | Path | None = None) -> int:
    """Known-bad gold: a tail moved to another head of the same relation.

    Tails come from the reference file when there is one (people wrote them, so
    the only fault is the swap), otherwise from the campaign's corpus.
    """
    if count <= 0:
        return 0
    rng = random.Random(campaign.seed + 1)
    if reference:
        relations = _relations_by_name(campaign)
        fits = _head_fits(campaign)
        rows = [
            (h, relations[r.lower()].pk, t)
            for h, r, t in _reference_triples(reference)
            if r.lower() in relations and fits(h)
        ]
        ids = _event_ids([h for h, _, _ in rows])
        pool = [(ids[h], rel, t) for h, rel, t in rows]
    else:
        sample = list(
            Item.objects.filter(campaign=campaign, is_gold=False)
            .order_by("position")
            .values_list("head_id", "relation_id", "tail")[: count * 4]
        )
        pool = sample
    by_relation: dict[int, list[tuple[int, str]]] = {}
    for head_id, relation_id, tail in pool:
        by_relation.setdefault(relation_id, []).append((head_id, tail))
    # (head, relation, moved tail) -> the head the tail was written for; ordered.
    swapped: dict[tuple[int, int, str], int] = {}
    relation_cycle = [r for r, pairs in by_relation.items() if len(pairs) >= 2]
    attempts = 0
    while relation_cycle and len(swapped) < count and attempts < count * 20:
        attempts += 1
        relation_id = rng.choice(relation_cycle)
        (head_a, tail_a), (head_b, tail_b) = rng.sample(by_relation[relation_id], 2)
        if head_a != head_b and normalize_tail(tail_a) != normalize_tail(tail_b):
            swapped.setdefault((head_a, relation_id, tail_b), head_b)
    texts = dict(
        Event.objects.filter(pk__in={o for o in swapped.values()}).values_list("id", "text")
    )
    triples = [
        (head, relation_id, tail, SWAP_REASON.format(other=texts.get(other, "another event")))
        for (head, relation_id, tail), other in swapped.items()
    ]
    return _add_gold(campaign=campaign, triples=triples, acceptable=False, source="swap")
