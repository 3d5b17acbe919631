"""Choosing which triples of a corpus a campaign asks people to judge.

Each way of choosing (a campaign's `sampling`) is a `Strategy`, registered by name in
`STRATEGIES`: a new one is a subclass and a line there (and a choice in
`Campaign.Sampling`, the field's list of names). `choose`, `strata` and `design_weights`
look the strategy up by name; an unknown name is a `SamplingError` naming the known ones.
A strategy that needs more than the candidates (thresholds, the crowd's labels) gets it in
`prepared`, which `strategy_prepared` calls with the campaign's `sampling_params`.

Candidates are read as numpy columns through a server-side cursor, so a
6.5M-triple corpus costs ~100 MB for a few seconds, never a Python object per row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np
from django.db import connection

from corpora.importing import NONE_TAIL_KEY
from corpora.models import Relation, Triple
from corpora.scores import score_join

from .errors import SamplingError
from .models import Campaign, Item

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

    def prepared(self, *, corpus_id: int, params: Mapping[str, Any]) -> Strategy:
        """The strategy ready for one campaign of `corpus_id` with these `sampling_params`
        (refused with a `SamplingError` when they do not fit); most need nothing."""
        return self

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


# --- Near the line ------------------------------------------------------------------

NEAR_LINE_BANDWIDTH = 0.05
# Every scored triple keeps a chance: a triple far from the line is drawn about 1/FLOOR
# times less often than one on it, never never, so 1/inclusion stays a finite weight.
NEAR_LINE_FLOOR = 0.02


def _inclusion(weights: np.ndarray, size: int) -> np.ndarray:
    """Inclusion probabilities proportional to `weights` that sum to `size`, none above 1
    (those that would be are certain, and the rest share what is left)."""
    pi = np.zeros_like(weights)
    certain = np.zeros(len(weights), dtype=bool)
    while True:
        free = ~certain & (weights > 0)
        left = size - int(certain.sum())
        total = weights[free].sum()
        if left <= 0 or total <= 0:
            break
        pi[free] = weights[free] * (left / total)
        over = free & (pi >= 1.0)
        if not over.any():
            break
        certain |= over
        pi[certain] = 1.0
    return pi


def _systematic(rng: np.random.Generator, pi: np.ndarray) -> np.ndarray:
    """A fixed-size sample in which index i is drawn with probability exactly pi[i]
    (systematic sampling on a random order: one random start, then every 1)."""
    order = rng.permutation(np.flatnonzero(pi > 0))
    cumulative = np.cumsum(pi[order])
    size = round(cumulative[-1]) if cumulative.size else 0
    if not size:
        return np.empty(0, dtype=np.int64)
    cumulative *= size / cumulative[-1]  # rounding error off the last step
    hits = np.searchsorted(cumulative, rng.random() + np.arange(size), side="right")
    return order[np.minimum(hits, order.size - 1)]


@dataclass(frozen=True, eq=False)
class NearTheLine(Strategy):
    """Draws around a threshold (a filter preset's, per relation when it has them): each
    scored triple with a probability that falls off with its distance from its relation's
    threshold (a Gaussian kernel of `bandwidth`, plus a floor so that no triple has none).
    A probability sample: each item weighs 1 / its inclusion probability (Horvitz-Thompson),
    so estimates that use the design weights stay unbiased for the whole corpus."""

    name: ClassVar[str] = "near_line"
    needs_scores: ClassVar[bool] = True

    threshold: float | None = None
    relation_thresholds: tuple[tuple[int, float], ...] = ()
    bandwidth: float = NEAR_LINE_BANDWIDTH

    def prepared(self, *, corpus_id, params):
        threshold = params.get("threshold")
        if threshold is None:
            raise SamplingError(
                "'near_line' sampling draws around a threshold: start it from a filter "
                'preset (the critic dashboard\'s "Learn near this line", '
                "`manage.py learn_campaign --preset`, or POST /api/critic/<corpus>/learn/).",
                field="sampling",
            )
        by_name = dict(params.get("relation_thresholds") or {})
        ids = dict(Relation.objects.filter(name__in=list(by_name)).values_list("name", "id"))
        if unknown := sorted(set(by_name) - set(ids)):
            raise SamplingError(f"Unknown relation(s) in the thresholds: {', '.join(unknown)}.")
        bandwidth = float(params.get("bandwidth") or NEAR_LINE_BANDWIDTH)
        values = [threshold, bandwidth, *by_name.values()]
        if not all(isinstance(v, int | float) and 0.0 <= v <= 1.0 for v in values):
            raise SamplingError("Thresholds and the bandwidth are numbers from 0 to 1.")
        if bandwidth <= 0:
            raise SamplingError("The bandwidth must be above 0.")
        return replace(
            self,
            threshold=float(threshold),
            relation_thresholds=tuple((ids[n], float(t)) for n, t in sorted(by_name.items())),
            bandwidth=bandwidth,
        )

    def lines(self, candidates: Candidates) -> np.ndarray:
        """Each candidate's threshold: its relation's, else the overall one."""
        if self.threshold is None:
            raise SamplingError("'near_line' sampling was not given its threshold.")
        if not len(candidates.ids):
            return np.empty(0)
        # One gather through a table indexed by relation id, not a pass per relation.
        top = max([int(candidates.relation_ids.max()), *(r for r, _ in self.relation_thresholds)])
        table = np.full(top + 1, self.threshold)
        for relation_id, threshold in self.relation_thresholds:
            table[relation_id] = threshold
        return table[candidates.relation_ids]

    def inclusion(self, candidates: Candidates, size: int) -> np.ndarray:
        closeness = candidates.scores - self.lines(candidates)
        closeness /= self.bandwidth
        np.square(closeness, out=closeness)
        closeness *= -0.5
        np.exp(closeness, out=closeness)
        closeness += NEAR_LINE_FLOOR
        closeness[np.isnan(candidates.scores)] = 0.0  # unscored: no candidate
        return _inclusion(closeness, size)

    def pick(self, rng, candidates, size):
        return _systematic(rng, self.inclusion(candidates, min(size, _scored(candidates).size)))

    def design_weights(self, candidates, picked):
        return 1.0 / self.inclusion(candidates, len(picked))[picked]


# --- Disagreement -------------------------------------------------------------------


def crowd_labels(*, corpus_id: int) -> tuple[np.ndarray, np.ndarray]:
    """(triple ids, sorted; their labels, 1 acceptable) of the corpus's triples that the
    crowd labelled in a learning campaign, the label aggregated last winning. Triples that
    an audit campaign labelled (they must stay unseen by training) or a researcher
    adjudicated (that label is final) are left out: asking again would not help."""
    from .selectors import item_label_sql

    label = item_label_sql("i")
    sql = (
        f"SELECT i.triple_id, {label}, CASE WHEN c.purpose = %s THEN 1 ELSE 0 END, "
        "CASE WHEN i.adjudicated_value IS NULL THEN 0 ELSE 1 END "
        f"FROM {Item._meta.db_table} i JOIN {Campaign._meta.db_table} c ON c.id = i.campaign_id "
        "WHERE c.corpus_id = %s AND NOT i.is_gold AND i.triple_id IS NOT NULL "
        f"AND ({label} IS NOT NULL OR i.adjudicated_value IS NOT NULL) "
        "ORDER BY CASE WHEN c.aggregated_at IS NULL THEN 0 ELSE 1 END, c.aggregated_at, "
        "c.id, i.id"
    )
    blocks = []
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, [Campaign.Purpose.AUDIT, corpus_id])
        while rows := cursor.fetchmany(FETCH_ROWS):
            blocks.append(
                np.array([(r[0], -1 if r[1] is None else r[1], r[2], r[3]) for r in rows])
            )
    if not blocks:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int8)
    table = np.concatenate(blocks).astype(np.int64)
    triple_ids = table[:, 0]
    barred = np.unique(triple_ids[(table[:, 2] == 1) | (table[:, 3] == 1)])
    # The last label of each triple: reverse, take first occurrences (np.unique sorts).
    unique, last = np.unique(triple_ids[::-1], return_index=True)
    labels = table[::-1, 1][last]
    keep = ~np.isin(unique, barred) & (labels >= 0)
    return unique[keep], labels[keep].astype(np.int8)


@dataclass(frozen=True, eq=False)
class Disagreement(Strategy):
    """The crowd's labelled triples where the critic's score is furthest from the crowd's
    label first (|label - score|: a confident critic against the crowd near 1, an
    uncertain one 0.5, agreement near 0), so a second look settles who was wrong. Not a
    probability sample: its items weigh 1 and are never used for unbiased estimates."""

    name: ClassVar[str] = "disagreement"
    needs_scores: ClassVar[bool] = True

    labelled_ids: np.ndarray | None = None  # sorted
    labels: np.ndarray | None = None

    def prepared(self, *, corpus_id, params):
        ids, labels = crowd_labels(corpus_id=corpus_id)
        if not ids.size:
            raise SamplingError(
                "'disagreement' sampling re-asks about the crowd's labels, and this corpus "
                "has none to learn from yet.",
                field="sampling",
            )
        return replace(self, labelled_ids=ids, labels=labels)

    def crowd(self, candidates: Candidates) -> np.ndarray:
        """Each candidate's crowd label (1 or 0), NaN where there is none."""
        if self.labelled_ids is None or self.labels is None:
            raise SamplingError("'disagreement' sampling was not given the crowd's labels.")
        found = np.full(len(candidates.ids), np.nan)
        if self.labelled_ids.size:
            at = np.minimum(
                np.searchsorted(self.labelled_ids, candidates.ids), self.labelled_ids.size - 1
            )
            hit = self.labelled_ids[at] == candidates.ids
            found[hit] = self.labels[at[hit]]
        return found

    def pick(self, rng, candidates, size):
        disagreement = np.abs(self.crowd(candidates) - candidates.scores)
        both = np.flatnonzero(~np.isnan(disagreement))
        # Ties broken at random so equal gaps mix relations.
        order = np.lexsort((rng.random(both.size), -disagreement[both]))
        return both[order[:size]]

    def design_weights(self, candidates, picked):
        return np.ones(len(picked))


STRATEGIES: dict[str, Strategy] = {
    strategy.name: strategy
    for strategy in (
        Uniform(),
        ByRelation(),
        ByScore(),
        ByRelationAndScore(),
        MostUncertain(),
        NearTheLine(),
        Disagreement(),
    )
}


def strategy_for(sampling: str | Strategy) -> Strategy:
    """The strategy of that name (or the one given, already prepared)."""
    if isinstance(sampling, Strategy):
        return sampling
    try:
        return STRATEGIES[sampling]
    except KeyError:
        known = ", ".join(STRATEGIES)
        raise SamplingError(f"Unknown sampling {sampling!r}: the known ones are {known}.") from None


def strategy_prepared(
    *, sampling: str, corpus_id: int, params: Mapping[str, Any] | None = None
) -> Strategy:
    """The strategy of that name, ready to sample `corpus_id` with `params`."""
    return strategy_for(sampling).prepared(corpus_id=corpus_id, params=params or {})


# --- By name ------------------------------------------------------------------------


def strata(*, candidates: Candidates, sampling: str | Strategy) -> np.ndarray | None:
    """The stratum of every candidate for stratified samplings, None for the others."""
    return strategy_for(sampling).strata(candidates)


def design_weights(
    *, candidates: Candidates, picked: np.ndarray, sampling: str | Strategy
) -> np.ndarray:
    """Each picked triple's design weight: population over picks within its stratum
    (the whole corpus for uniform sampling), 1 / inclusion probability near the line.
    Most-uncertain-first and disagreement are no probability samples; their items get
    weight 1 and are never used for unbiased estimates."""
    strategy = strategy_for(sampling)
    if not len(picked):
        return np.ones(0)
    return strategy.design_weights(candidates, picked)


def choose(*, candidates: Candidates, size: int, sampling: str | Strategy, seed: int) -> np.ndarray:
    """Indexes into `candidates`, in the order the items will be handed out."""
    strategy = strategy_for(sampling)
    rng = np.random.default_rng(seed)
    size = min(size, len(candidates.ids))
    if size <= 0:
        return np.empty(0, dtype=np.int64)
    if strategy.needs_scores and not _scored(candidates).size:
        raise SamplingError(
            f"'{strategy.name}' sampling needs critic scores, and no triple of this corpus "
            "has one yet."
        )
    return strategy.pick(rng, candidates, size)
