"""Choosing which triples of a corpus a campaign asks people to judge.

Each way of choosing (a campaign's `sampling`) is a `Strategy`, registered by name in
`STRATEGIES`: a new one is a subclass and a line there (and a choice in
`Campaign.Sampling`, the field's list of names). `choose`, `strata` and `design_weights`
look the strategy up by name; an unknown name is a `SamplingError` naming the known ones.

Candidates are read as numpy columns through a server-side cursor, so a
6.5M-triple corpus costs ~100 MB for a few seconds, never a Python object per row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from django.db import connection

from corpora.importing import NONE_TAIL_KEY
from corpora.models import Triple
from corpora.scores import score_join

from .errors import SamplingError
from .models import Item

FETCH_ROWS = 200_000
SCORE_BINS = 10


@dataclass
class Candidates:
    ids: np.ndarray
    relation_ids: np.ndarray
    scores: np.ndarray  # NaN where the triple has no score


def corpus_candidates(*, corpus_id: int, exclude_campaign_id: int | None = None) -> Candidates:
    """The triples a campaign may ask about: all but those whose tail is ATOMIC's "none"
    (no inference), which an import may have kept."""
    triple_table = Triple._meta.db_table
    ids, relations, scores = [], [], []
    with connection.chunked_cursor() as cursor:
        cursor.execute(
            f"SELECT t.id, t.relation_id, s.score FROM {triple_table} t"
            f"{score_join(corpus_id)} WHERE t.corpus_id = %s AND t.tail_key <> %s",
            [corpus_id, NONE_TAIL_KEY],
        )
        while rows := cursor.fetchmany(FETCH_ROWS):
            block = np.array(
                [(r[0], r[1], np.nan if r[2] is None else r[2]) for r in rows], dtype=np.float64
            )
            ids.append(block[:, 0].astype(np.int64))
            relations.append(block[:, 1].astype(np.int64))
            scores.append(block[:, 2])
    if not ids:
        empty = np.empty(0, dtype=np.int64)
        return Candidates(empty, empty, np.empty(0))
    found = Candidates(np.concatenate(ids), np.concatenate(relations), np.concatenate(scores))
    if exclude_campaign_id is not None:
        taken = np.fromiter(
            Item.objects.filter(campaign_id=exclude_campaign_id, triple__isnull=False)
            .values_list("triple_id", flat=True)
            .iterator(chunk_size=FETCH_ROWS),
            dtype=np.int64,
        )
        if taken.size:
            keep = ~np.isin(found.ids, taken)
            found = Candidates(found.ids[keep], found.relation_ids[keep], found.scores[keep])
    return found


def _spread(group_sizes: np.ndarray, total: int) -> np.ndarray:
    """Equal shares per group, small groups giving what they cannot use to the others."""
    take = np.zeros_like(group_sizes)
    left = total
    order = np.argsort(group_sizes, kind="stable")
    for position, index in enumerate(order):
        groups_left = len(order) - position
        share = min(int(group_sizes[index]), left // groups_left + (left % groups_left > 0))
        take[index] = share
        left -= share
    return take


def _stratified(rng: np.random.Generator, labels: np.ndarray, size: int) -> np.ndarray:
    groups, inverse = np.unique(labels, return_inverse=True)
    counts = np.bincount(inverse, minlength=len(groups))
    take = _spread(counts, size)
    chosen = [
        rng.choice(np.flatnonzero(inverse == g), size=int(n), replace=False)
        for g, n in enumerate(take)
        if n
    ]
    picked = np.concatenate(chosen) if chosen else np.empty(0, dtype=np.int64)
    return rng.permutation(picked)


def _score_bins(scores: np.ndarray) -> np.ndarray:
    return np.minimum((np.clip(scores, 0.0, 1.0) * SCORE_BINS).astype(np.int64), SCORE_BINS - 1)


# --- Strategies -------------------------------------------------------------------


class Strategy:
    """A way of choosing a campaign's triples.

    `pick` returns indexes into the candidates, in the order the items will be handed out;
    `strata` the stratum of every candidate (None when the sample is not stratified), from
    which `design_weights` gives each pick its weight: population over picks within its
    stratum, the whole corpus when there are no strata. With `needs_scores`, only triples
    with a critic score are candidates, and a corpus with none is refused before `pick`."""

    name: ClassVar[str]
    needs_scores: ClassVar[bool] = False

    def pick(self, rng: np.random.Generator, candidates: Candidates, size: int) -> np.ndarray:
        raise NotImplementedError

    def strata(self, candidates: Candidates) -> np.ndarray | None:
        return None

    def design_weights(self, candidates: Candidates, picked: np.ndarray) -> np.ndarray:
        labels = self.strata(candidates)
        if labels is None:
            return np.full(len(picked), len(candidates.ids) / len(picked))
        if self.needs_scores:
            labels = np.where(np.isnan(candidates.scores), -1, labels)
            population_labels = labels[~np.isnan(candidates.scores)]
        else:
            population_labels = labels
        groups, population = np.unique(population_labels, return_counts=True)
        picked_groups, picks = np.unique(labels[picked], return_counts=True)
        population_of = dict(zip(groups.tolist(), population.tolist(), strict=True))
        picks_of = dict(zip(picked_groups.tolist(), picks.tolist(), strict=True))
        return np.array(
            [population_of[g] / picks_of[g] for g in labels[picked].tolist()], dtype=np.float64
        )


def _scored(candidates: Candidates) -> np.ndarray:
    return np.flatnonzero(~np.isnan(candidates.scores))


def _score_strata(candidates: Candidates) -> np.ndarray:
    """Score bins, -1 for a triple with no score."""
    scored = ~np.isnan(candidates.scores)
    return np.where(scored, _score_bins(np.nan_to_num(candidates.scores)), -1)


class Uniform(Strategy):
    name = "uniform"

    def pick(self, rng, candidates, size):
        return rng.choice(len(candidates.ids), size=size, replace=False)


class ByRelation(Strategy):
    name = "relation"

    def pick(self, rng, candidates, size):
        return _stratified(rng, candidates.relation_ids, size)

    def strata(self, candidates):
        return candidates.relation_ids.astype(np.int64)


class _StratifiedByScore(Strategy):
    needs_scores = True

    def pick(self, rng, candidates, size):
        scored = _scored(candidates)
        labels = self.strata(candidates)[scored]
        return scored[_stratified(rng, labels, min(size, scored.size))]


class ByScore(_StratifiedByScore):
    name = "score"

    def strata(self, candidates):
        return _score_strata(candidates)


class ByRelationAndScore(_StratifiedByScore):
    name = "relation_score"

    def strata(self, candidates):
        relations = candidates.relation_ids.astype(np.int64)
        return relations * (SCORE_BINS + 1) + _score_strata(candidates) + 1


class MostUncertain(Strategy):
    """Nearest to 0.5 first. Not a probability sample: its items get weight 1 and are never
    used for unbiased estimates."""

    name = "uncertain"
    needs_scores = True

    def pick(self, rng, candidates, size):
        scored = _scored(candidates)
        # Ties broken at random so equal scores mix relations.
        jitter = rng.random(scored.size)
        order = np.lexsort((jitter, np.abs(candidates.scores[scored] - 0.5)))
        return scored[order[:size]]

    def design_weights(self, candidates, picked):
        return np.ones(len(picked))


STRATEGIES: dict[str, Strategy] = {
    strategy.name: strategy
    for strategy in (Uniform(), ByRelation(), ByScore(), ByRelationAndScore(), MostUncertain())
}


def strategy_for(sampling: str) -> Strategy:
    try:
        return STRATEGIES[sampling]
    except KeyError:
        known = ", ".join(STRATEGIES)
        raise SamplingError(f"Unknown sampling {sampling!r}: the known ones are {known}.") from None


# --- By name ------------------------------------------------------------------------


def strata(*, candidates: Candidates, sampling: str) -> np.ndarray | None:
    """The stratum of every candidate for stratified samplings, None for the others."""
    return strategy_for(sampling).strata(candidates)


def design_weights(*, candidates: Candidates, picked: np.ndarray, sampling: str) -> np.ndarray:
    """Each picked triple's design weight: population over picks within its stratum
    (the whole corpus for uniform sampling). Most-uncertain-first is not a probability
    sample; its items get weight 1 and are never used for unbiased estimates."""
    strategy = strategy_for(sampling)
    if not len(picked):
        return np.ones(0)
    return strategy.design_weights(candidates, picked)


def choose(*, candidates: Candidates, size: int, sampling: str, seed: int) -> np.ndarray:
    """Indexes into `candidates`, in the order the items will be handed out."""
    strategy = strategy_for(sampling)
    rng = np.random.default_rng(seed)
    size = min(size, len(candidates.ids))
    if size <= 0:
        return np.empty(0, dtype=np.int64)
    if strategy.needs_scores and not _scored(candidates).size:
        raise SamplingError(
            f"'{sampling}' sampling needs critic scores, and no triple of this corpus has one yet."
        )
    return strategy.pick(rng, candidates, size)
