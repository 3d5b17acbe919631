"""Labels that come with a corpus (the SKD release's `valid`), imported as the judgments of
an "imported" annotator in a closed campaign.
"""

from __future__ import annotations

import numpy as np
from django.db import connection, transaction
from django.utils import timezone

from corpora.models import Corpus, Triple

from ..errors import AnnotationError
from ..models import Campaign, CampaignAnnotator, Item, Judgment, JudgmentValue
from .aggregation import campaign_aggregate
from .items import _insert_items, _refresh_item_counts

IMPORTED_ANNOTATOR = "imported"


def _imported_annotator():
    from django.contrib.auth import get_user_model

    user, created = get_user_model().objects.get_or_create(
        username=IMPORTED_ANNOTATOR, defaults={"is_active": False}
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def campaign_import_labels(*, corpus: Corpus, name: str | None = None, created_by=None) -> Campaign:
    """Turn the `valid` values an SKD release carries into judgments of an "imported"
    annotator, in a closed campaign with one item per labelled triple."""
    import orjson

    labelled: list[tuple[int, int]] = []
    with connection.chunked_cursor() as cursor:
        cursor.execute(
            f"SELECT id, source_fields FROM {Triple._meta.db_table} "
            "WHERE corpus_id = %s AND source_fields LIKE %s ORDER BY id",
            [corpus.pk, '%"valid"%'],
        )
        while rows := cursor.fetchmany(20_000):
            for triple_id, fields in rows:
                value = orjson.loads(fields).get("valid")
                on_scale = isinstance(value, int | float) and value in JudgmentValue.values
                if on_scale:
                    labelled.append((triple_id, int(value)))
    if not labelled:
        raise AnnotationError(f"Corpus '{corpus.name}' has no triples with a `valid` label.")
    name = name or f"imported: {corpus.name}"
    annotator = _imported_annotator()
    now = timezone.now()
    with transaction.atomic():
        campaign = Campaign.objects.create(
            corpus=corpus,
            name=name,
            status=Campaign.Status.CLOSED,
            judgments_per_item=1,
            gold_share=0.0,
            instructions="Labels that came with the corpus (the SKD release's `valid`).",
            created_by=created_by,
        )
        _insert_items(
            campaign=campaign,
            triple_ids=np.array([t for t, _ in labelled], dtype=np.int64),
            weights=np.ones(len(labelled)),
            first_position=0,
        )
        value_of = dict(labelled)
        Item.objects.filter(campaign=campaign).update(slots_free=0, judgment_count=1)
        CampaignAnnotator.objects.create(campaign=campaign, annotator=annotator)
        items = Item.objects.filter(campaign=campaign).values_list("pk", "triple_id")
        Judgment.objects.bulk_create(
            (
                Judgment(
                    campaign=campaign,
                    item_id=pk,
                    annotator=annotator,
                    value=value_of[triple_id],
                    created_at=now,
                )
                for pk, triple_id in items.iterator(chunk_size=5000)
            ),
            batch_size=5000,
        )
        _refresh_item_counts(campaign)
    campaign_aggregate(campaign=campaign)
    return campaign
