"""The labels a critic learns from and is measured on, read as numpy columns.

A label is the one annotation uses an item with (`annotation.models.label_used`): a
researcher's adjudicated value when there is one, taken as certain, else the item's
aggregated judgment (Dawid-Skene where it exists, majority otherwise), binarized (> 0
acceptable). Gold items are left out. When several campaigns labelled the same triple,
an adjudicated label wins (the latest one), and otherwise the label aggregated last wins
(so people judging today override labels imported yesterday, whichever campaign was made
first). Audit campaigns' labels are kept apart: they measure the critic and are never
trained on.

Each label also carries its certainty (`confidence`): the Dawid-Skene posterior
probability of the label where Dawid-Skene ran, the share of votes on the winning side
where the majority decided, and 1 for an adjudicated label (or one without a recorded
confidence). The critic may weigh its examples by it or learn it as a soft target
(`CriticConfig.label_weighting`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.db import connection

from annotation.models import Campaign, Item
from annotation.selectors import item_label_sql


@dataclass(frozen=True)
class LabelSet:
    triple_ids: np.ndarray  # int64
    labels: np.ndarray  # int8, 1 acceptable
    weights: np.ndarray  # float64 design weights (1 for learning labels)
    audit: np.ndarray  # bool
    # Labelled items of learning campaigns before keeping one label per triple, plus their
    # adjudications (of the whole corpus: subsets keep it, it is what retraining counts
    # new labels by).
    learning_events: int = 0
    # float64 in [0.5, 1]: the probability that the label is right (see the module's doc);
    # None reads as 1 everywhere.
    confidence: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.triple_ids)

    def subset(self, mask: np.ndarray) -> LabelSet:
        return LabelSet(
            self.triple_ids[mask],
            self.labels[mask],
            self.weights[mask],
            self.audit[mask],
            self.learning_events,
            None if self.confidence is None else self.confidence[mask],
        )

    @property
    def learning(self) -> LabelSet:
        return self.subset(~self.audit)

    @property
    def auditing(self) -> LabelSet:
        return self.subset(self.audit)

    @property
    def certainty(self) -> np.ndarray:
        """The probability that each label is right (1 where none was recorded)."""
        if self.confidence is None:
            return np.ones(len(self))
        return self.confidence

    @property
    def acceptable_probability(self) -> np.ndarray:
        """P(acceptable) of each triple: the soft label."""
        return np.where(self.labels > 0, self.certainty, 1.0 - self.certainty)

    @property
    def positives(self) -> int:
        return int(self.labels.sum())

    @property
    def has_both_classes(self) -> bool:
        return 0 < self.positives < len(self)


def corpus_labels(*, corpus_id: int) -> LabelSet:
    label = item_label_sql("i")
    # Adjudicated labels are certain: they come last, so they win over any crowd label of
    # the same triple (the latest adjudication over earlier ones).
    sql = (
        f"SELECT i.triple_id, {label}, "
        "i.weight, CASE WHEN c.purpose = %s THEN 1 ELSE 0 END, "
        "CASE WHEN i.adjudicated_value IS NULL THEN 0 ELSE 1 END, "
        # The certainty of the label used: adjudicated labels are certain; otherwise the
        # confidence of the crowd label item_label_sql picked (Dawid-Skene, else majority).
        "CASE WHEN i.adjudicated_value IS NOT NULL THEN 1.0 "
        "WHEN i.ds_label IS NOT NULL THEN COALESCE(i.ds_confidence, 1.0) "
        "ELSE COALESCE(i.majority_confidence, 1.0) END "
        f"FROM {Item._meta.db_table} i JOIN {Campaign._meta.db_table} c ON c.id = i.campaign_id "
        "WHERE c.corpus_id = %s AND NOT i.is_gold AND i.triple_id IS NOT NULL "
        f"AND {label} IS NOT NULL "
        "ORDER BY CASE WHEN i.adjudicated_value IS NULL THEN 0 ELSE 1 END, i.adjudicated_at, "
        "CASE WHEN c.aggregated_at IS NULL THEN 0 ELSE 1 END, c.aggregated_at, c.id, i.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [Campaign.Purpose.AUDIT, corpus_id])
        rows = cursor.fetchall()
    rows = _own_rows(rows, corpus_id)
    if not rows:
        empty = np.empty(0)
        return LabelSet(
            empty.astype(np.int64), empty.astype(np.int8), empty, empty.astype(bool), 0, empty
        )
    table = np.array(rows, dtype=np.float64)
    triple_ids = table[:, 0].astype(np.int64)
    audit = table[:, 3].astype(bool)
    # Keep the last label per (triple, purpose): reverse, take first occurrences.
    pair = triple_ids * 2 + audit
    _, last = np.unique(pair[::-1], return_index=True)
    keep = np.sort(len(pair) - 1 - last)
    return LabelSet(
        triple_ids=triple_ids[keep],
        labels=table[keep, 1].astype(np.int8),
        weights=table[keep, 2],
        audit=audit[keep],
        # An adjudication is news too (it may overturn the crowd's label): it counts
        # toward retraining beside the crowd's labels.
        learning_events=int((~audit).sum() + (table[:, 4].astype(bool) & ~audit).sum()),
        # A posterior below 0.5 cannot belong to the label it decided; clip stray values.
        confidence=np.clip(table[keep, 5], 0.5, 1.0),
    )


def _own_rows(rows: list[tuple], corpus_id: int) -> list[tuple]:
    """The rows but those of items whose triple belongs to another corpus: a blind
    evaluation's teacher tails in a campaign of the student's corpus (`annotation.sources`)
    are no labels of the student's corpus."""
    from annotation.sources import FOREIGN_SOURCES

    foreign = set(
        Item.objects.filter(
            campaign__corpus_id=corpus_id, source__in=FOREIGN_SOURCES, triple__isnull=False
        ).values_list("triple_id", flat=True)
    )
    if not foreign:
        return rows
    return [row for row in rows if row[0] not in foreign]
