"""Gold items: known-good triples from a reference file, known-bad ones made by swapping tails."""

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


def _relations_by_name() -> dict[str, Relation]:
    return {r.name.lower(): r for r in Relation.objects.all()}


def _add_gold(
    *, campaign: Campaign, triples: list[tuple[int, int, str]], acceptable: bool, source: str
) -> int:
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
            slots_free=0,
        )
        for head_id, relation_id, tail in triples
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
    relations = _relations_by_name()
    usable = [(h, relations[r.lower()], t) for h, r, t in rows if r.lower() in relations]
    if not usable:
        raise AnnotationError(f"{Path(path).name}: none of its relations is known.")
    rng = random.Random(campaign.seed)
    picked = rng.sample(usable, min(count, len(usable)))
    ids = _event_ids([h for h, _, _ in picked])
    return _add_gold(
        campaign=campaign,
        triples=[(ids[h], rel.pk, t) for h, rel, t in picked],
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
        relations = _relations_by_name()
        rows = [
            (h, relations[r.lower()].pk, t)
            for h, r, t in _reference_triples(reference)
            if r.lower() in relations
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
    swapped: dict[tuple[int, int, str], None] = {}  # ordered set
    relation_cycle = [r for r, pairs in by_relation.items() if len(pairs) >= 2]
    attempts = 0
    while relation_cycle and len(swapped) < count and attempts < count * 20:
        attempts += 1
        relation_id = rng.choice(relation_cycle)
        (head_a, tail_a), (head_b, tail_b) = rng.sample(by_relation[relation_id], 2)
        if head_a != head_b and normalize_tail(tail_a) != normalize_tail(tail_b):
            swapped[(head_a, relation_id, tail_b)] = None
    return _add_gold(campaign=campaign, triples=list(swapped), acceptable=False, source="swap")
