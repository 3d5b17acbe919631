"""Aggregation of a campaign's judgments: item labels, agreement, acceptance, annotators.

Judgments of paused annotators (not reinstated) and of gold items are left out
of item labels and corpus measures; gold is only used to score annotators. Items keep
the crowd's labels; the measures (acceptance, items labelled) count a researcher's
adjudicated label instead where there is one.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from corpora.models import Relation

from .ml.aggregation import ItemLabel, aggregate
from .ml.agreement import agreement, annotator_agreement, wilson_interval
from .models import Campaign, CampaignAnnotator, Item, Judgment, JudgmentValue

Triple3 = tuple[int, int, int]


def _agreement_dict(judgments: list[Triple3]) -> dict[str, Any]:
    report = agreement(judgments)
    return {
        "items": report.items,
        "judgments": report.judgments,
        "alpha_ordinal": report.alpha_ordinal,
        "alpha_binary": report.alpha_binary,
        "fleiss_kappa": report.fleiss_kappa,
        "pairwise": report.pairwise,
    }


def _acceptance(labels: list[ItemLabel]) -> dict[str, Any]:
    decided = [label.majority for label in labels if label.majority is not None]
    accepted = sum(decided)
    rate, low, high = wilson_interval(accepted, len(decided))
    return {"accepted": accepted, "decided": len(decided), "rate": rate, "low": low, "high": high}


def _write_labels(campaign: Campaign, labels: dict[int, ItemLabel]) -> None:
    item_table = Item._meta.db_table
    rows = [
        (lab.majority, lab.majority_confidence, lab.ds, lab.ds_confidence, item_id)
        for item_id, lab in labels.items()
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {item_table} SET majority = NULL, majority_confidence = NULL, "
            "ds_label = NULL, ds_confidence = NULL WHERE campaign_id = %s",
            [campaign.pk],
        )
        cursor.executemany(
            f"UPDATE {item_table} SET majority = %s, majority_confidence = %s, "
            "ds_label = %s, ds_confidence = %s WHERE id = %s",
            rows,
        )


def _with_adjudications(
    campaign: Campaign, labels: dict[int, ItemLabel], relation_of: dict[int, int]
) -> tuple[dict[int, ItemLabel], int]:
    """The crowd's labels with each adjudicated item's replaced by the researcher's, with
    confidence 1 ("can't judge" adjudicated: undecided). Adjudicated items nobody judged
    are added (and their relation to `relation_of`). Also says how many were adjudicated."""
    used = dict(labels)
    adjudicated = Item.objects.filter(
        campaign=campaign, is_gold=False, adjudicated_value__isnull=False
    ).values_list("pk", "adjudicated_value", "relation_id")
    count = 0
    for pk, value, relation_id in adjudicated:
        count += 1
        relation_of.setdefault(pk, relation_id)
        crowd = labels.get(pk)
        decided = None if value == JudgmentValue.CANT_JUDGE else value > 0
        confidence = 0.0 if decided is None else 1.0
        used[pk] = ItemLabel(
            item_id=pk,
            votes=crowd.votes if crowd else 0,
            accepted_votes=crowd.accepted_votes if crowd else 0,
            majority=decided,
            majority_confidence=confidence,
            ds=decided,
            ds_confidence=confidence,
        )
    return used, count


def campaign_aggregate(*, campaign: Campaign) -> dict[str, Any]:
    """Label every judged item (majority vote and Dawid-Skene) and store the campaign's
    agreement, acceptance (overall and per relation) and annotator table in `stats`."""
    standings = {
        s.annotator_id: s
        for s in CampaignAnnotator.objects.filter(campaign=campaign).select_related("annotator")
    }
    excluded = {pk for pk, s in standings.items() if s.paused and not s.reinstated}
    rows = list(
        Judgment.objects.filter(campaign=campaign).values_list(
            "item_id", "annotator_id", "value", "seconds", "item__is_gold", "item__relation_id"
        )
    )
    corpus_judgments = [
        (item, who, value)
        for item, who, value, _, gold, _ in rows
        if not gold and who not in excluded
    ]
    relation_of = {item: rel for item, _, _, _, gold, rel in rows if not gold}
    labels = aggregate(corpus_judgments)
    # What the measures count: a researcher's adjudicated label wins, whatever the crowd
    # said. The items keep the crowd's labels (majority, ds_*) beside it.
    used, adjudicated = _with_adjudications(campaign, labels, relation_of)

    names = dict(Relation.objects.values_list("id", "name"))
    judgments_by_relation: dict[int, list[Triple3]] = defaultdict(list)
    for judgment in corpus_judgments:
        judgments_by_relation[relation_of[judgment[0]]].append(judgment)
    labels_by_relation: dict[int, list[ItemLabel]] = defaultdict(list)
    for item_id, label in used.items():
        labels_by_relation[relation_of[item_id]].append(label)
    by_relation = [
        {
            "relation": names.get(rel, str(rel)),
            **_agreement_dict(judgments_by_relation[rel]),
            "acceptance": _acceptance(labels_by_relation[rel]),
        }
        for rel in sorted(
            judgments_by_relation.keys() | labels_by_relation.keys(),
            key=lambda r: names.get(r, str(r)),
        )
    ]

    with_others = annotator_agreement(
        [(item, who, value) for item, who, value, _, gold, _ in rows if not gold]
    )
    seconds: dict[int, list[float]] = defaultdict(list)
    counts: dict[int, int] = defaultdict(int)
    for _, who, _, secs, _, _ in rows:
        counts[who] += 1
        if secs is not None:
            seconds[who].append(secs)
    annotators = []
    for who in sorted(counts.keys() | standings.keys()):
        standing = standings.get(who)
        annotators.append(
            {
                "id": who,
                "username": standing.annotator.get_username() if standing else str(who),
                "judgments": counts.get(who, 0),
                "median_seconds": statistics.median(seconds[who]) if seconds[who] else None,
                "gold_answered": standing.gold_answered if standing else 0,
                "gold_accuracy": standing.gold_accuracy if standing else None,
                "agreement": with_others.get(who),
                "paused": bool(standing and standing.paused),
                "reinstated": bool(standing and standing.reinstated),
            }
        )

    stats = {
        "judgments": len(corpus_judgments),
        "items_labelled": sum(1 for lab in used.values() if lab.majority is not None),
        "items_adjudicated": adjudicated,
        "overall": {
            **_agreement_dict(corpus_judgments),
            "acceptance": _acceptance(list(used.values())),
        },
        "by_relation": by_relation,
        "annotators": annotators,
        "excluded_annotators": sorted(standings[pk].annotator.get_username() for pk in excluded),
    }
    now = timezone.now()
    with transaction.atomic():
        _write_labels(campaign, labels)
        Campaign.objects.filter(pk=campaign.pk).update(stats=stats, aggregated_at=now)
    campaign.stats, campaign.aggregated_at = stats, now
    return stats
