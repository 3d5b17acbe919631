"""Reads for pages, the API and tasks. Nothing here scans a whole corpus:
counts come from the corpus row, lists use keyset pagination on the id."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

from .models import Corpus, Event, Relation, Triple


@dataclass(frozen=True)
class TripleFilter:
    relation: str | None = None
    split: str | None = None
    head_contains: str | None = None
    min_score: float | None = None
    max_score: float | None = None


def corpus_list() -> QuerySet[Corpus]:
    return Corpus.objects.order_by("name")


def relation_list() -> QuerySet[Relation]:
    return Relation.objects.all()


@dataclass(frozen=True)
class RelationCount:
    relation: str
    total: int
    by_split: dict[str, int]


def corpus_relation_counts(*, corpus: Corpus) -> list[RelationCount]:
    """Counts by relation and split, from the stats the last write stored."""
    by_relation = corpus.stats.get("by_relation", {})
    rows = [
        RelationCount(relation=name, total=sum(splits.values()), by_split=dict(splits))
        for name, splits in by_relation.items()
    ]
    return sorted(rows, key=lambda r: (-r.total, r.relation))


def corpus_splits(*, corpus: Corpus) -> list[str]:
    order = {"train": 0, "val": 1, "dev": 1, "test": 2}
    return sorted(corpus.stats.get("by_split", {}), key=lambda s: (order.get(s, 9), s))


def triple_queryset(*, corpus: Corpus, flt: TripleFilter | None = None) -> QuerySet[Triple]:
    qs = Triple.objects.filter(corpus=corpus).with_score(corpus).select_related("head", "relation")
    return _filtered(qs, flt or TripleFilter()).order_by("id")


def _filtered(qs: QuerySet[Triple], flt: TripleFilter) -> QuerySet[Triple]:
    if flt.relation:
        qs = qs.filter(relation__name=flt.relation)
    if flt.split:
        qs = qs.filter(split=flt.split)
    if flt.head_contains:
        # Events are far fewer than triples: find matching heads first.
        head_ids = Event.objects.filter(text__icontains=flt.head_contains).values("id")
        qs = qs.filter(head_id__in=head_ids)
    if flt.min_score is not None:
        qs = qs.filter(score__gte=flt.min_score)
    if flt.max_score is not None:
        qs = qs.filter(score__lte=flt.max_score)
    return qs


@dataclass(frozen=True)
class TriplePage:
    triples: list[Triple]
    next_after: int | None  # the `after` of the next page, None on the last
    after: int | None
    prev_before: int | None = None  # the `before` of the previous page, None on the first
    before: int | None = None


def triple_page(
    *,
    corpus: Corpus,
    flt: TripleFilter | None = None,
    after: int | None = None,
    before: int | None = None,
    size: int = 50,
) -> TriplePage:
    """One page of triples after the id `after`, or the page before the id `before`
    (keyset pagination both ways: no OFFSET scans)."""
    qs = triple_queryset(corpus=corpus, flt=flt)
    if before and not after:
        rows = list(qs.filter(id__lt=before).order_by("-id")[: size + 1])
        if rows:  # else nothing comes before: the first page
            has_previous = len(rows) > size
            rows = rows[:size][::-1]
            has_next = qs.filter(id__gt=rows[-1].id).exists()
            return TriplePage(
                triples=rows,
                next_after=rows[-1].id if has_next else None,
                after=None,
                prev_before=rows[0].id if has_previous else None,
                before=before,
            )
    rows = list((qs.filter(id__gt=after) if after else qs)[: size + 1])
    next_after = rows[size - 1].id if len(rows) > size else None
    rows = rows[:size]
    prev_before = None
    if after and qs.filter(id__lte=after).exists():
        prev_before = rows[0].id if rows else after + 1
    return TriplePage(triples=rows, next_after=next_after, after=after, prev_before=prev_before)


@dataclass(frozen=True)
class MatchCount:
    """How many triples match a filter: exact, or at least `value` when counting stopped
    at the bound."""

    value: int
    exact: bool


def triple_match_count(
    *, corpus: Corpus, flt: TripleFilter | None = None, bound: int = 10_000
) -> MatchCount:
    """Exact from the corpus's stored counts when the filter is by relation and split
    only (no scan); otherwise counted up to `bound` + 1 rows, so a head search over a
    corpus of millions costs no more than reading that many index entries."""
    flt = flt or TripleFilter()
    if not (flt.head_contains or flt.min_score is not None or flt.max_score is not None):
        by_relation = corpus.stats.get("by_relation", {})
        relations = [flt.relation] if flt.relation else list(by_relation)
        total = sum(
            count
            for name in relations
            for split, count in by_relation.get(name, {}).items()
            if not flt.split or split == flt.split
        )
        return MatchCount(value=total, exact=True)
    qs = Triple.objects.filter(corpus=corpus)
    if flt.min_score is not None or flt.max_score is not None:
        qs = qs.with_score(corpus)
    found = _filtered(qs, flt).values("id")[: bound + 1].count()
    return MatchCount(value=min(found, bound), exact=found <= bound)


def triple_sample(*, corpus: Corpus, size: int = 10) -> list[Triple]:
    """A spread of triples across the corpus, by evenly spaced ids (no ORDER BY random())."""
    first = Triple.objects.filter(corpus=corpus).order_by("id").values_list("id", flat=True)[:1]
    last = Triple.objects.filter(corpus=corpus).order_by("-id").values_list("id", flat=True)[:1]
    if not first or not last:
        return []
    lo, hi = first[0], last[0]
    step = max(1, (hi - lo) // max(1, size))
    picks = []
    triples = Triple.objects.filter(corpus=corpus).with_score(corpus)
    for target in range(lo, hi + 1, step):
        triple = (
            triples.filter(id__gte=target).select_related("head", "relation").order_by("id").first()
        )
        if triple and (not picks or triple.id != picks[-1].id):
            picks.append(triple)
        if len(picks) >= size:
            break
    return picks


def triple_keys_held(
    *, corpus_id: int, keys: set[tuple[str, int, int]]
) -> set[tuple[str, int, int]]:
    """Which of the (head text, relation id, tail key) keys the corpus holds already."""
    if not keys:
        return set()
    found = Triple.objects.filter(
        corpus_id=corpus_id,
        head__text__in={head for head, _, _ in keys},
        relation_id__in={relation for _, relation, _ in keys},
        tail_key__in={key for _, _, key in keys},
    ).values_list("head__text", "relation_id", "tail_key")
    return set(found) & keys
