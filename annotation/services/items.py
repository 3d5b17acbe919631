"""Item rows of a campaign: copying chosen triples into items, positions, the
campaign's item counts, and slots given back when a lease ends unanswered.

Helpers of the other services modules (hence the leading underscores); no use case here.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from django.db import connection
from django.db.models import F, Max

from corpora.models import Triple

from ..models import Campaign, Item


def _insert_items(
    *, campaign: Campaign, triple_ids: np.ndarray, weights: np.ndarray, first_position: int
) -> int:
    """Copy the chosen triples into items, in the given order, in one statement."""
    if not len(triple_ids):
        return 0
    item_table, triple_table = Item._meta.db_table, Triple._meta.db_table
    rows = [
        (int(t), first_position + i, float(w))
        for i, (t, w) in enumerate(zip(triple_ids, weights, strict=True))
    ]
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS annotation_pick")
        cursor.execute(
            "CREATE TEMP TABLE annotation_pick "
            "(triple_id bigint, position bigint, weight double precision)"
        )
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(
                "COPY annotation_pick (triple_id, position, weight) FROM STDIN"
            ) as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            cursor.executemany("INSERT INTO annotation_pick VALUES (%s, %s, %s)", rows)
        cursor.execute(
            f"INSERT INTO {item_table} (campaign_id, triple_id, head_id, relation_id, tail, "
            "position, is_gold, gold_source, gold_reason, source, slots_free, judgment_count, "
            "weight) "
            "SELECT %s, t.id, t.head_id, t.relation_id, t.tail, p.position, FALSE, '', '', '', "
            "%s, 0, p.weight "
            f"FROM annotation_pick p JOIN {triple_table} t ON t.id = p.triple_id "
            "ORDER BY p.position",
            [campaign.pk, campaign.judgments_per_item],
        )
        inserted = cursor.rowcount
        cursor.execute("DROP TABLE annotation_pick")
    return inserted


def _next_position(campaign: Campaign) -> int:
    top = Item.objects.filter(campaign=campaign).aggregate(top=Max("position"))["top"]
    return 0 if top is None else top + 1


def _refresh_item_counts(campaign: Campaign) -> None:
    items = Item.objects.filter(campaign=campaign)
    campaign.item_count = items.filter(is_gold=False).count()
    campaign.gold_count = items.filter(is_gold=True).count()
    Campaign.objects.filter(pk=campaign.pk).update(
        item_count=campaign.item_count, gold_count=campaign.gold_count
    )


def _give_back(item_ids: list[int]) -> None:
    """Return one slot per expired or skipped lease, locking items in id order."""
    for item_id, n in sorted(Counter(item_ids).items()):
        Item.objects.filter(pk=item_id, is_gold=False).update(slots_free=F("slots_free") + n)
