"""Adjudication: a researcher sets an item's final label, or clears it.

The adjudicated value takes precedence over the crowd's label everywhere the item's label
is used (`models.label_used`): the campaign's acceptance, the aggregated export and the
critic's training labels. The crowd's own labels (majority, Dawid-Skene) stay on the item
beside it, so clearing the adjudication gives the crowd's label back at once.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from core.limits import choice_check

from ..errors import AnnotationError
from ..models import Item, JudgmentValue
from .aggregation import campaign_aggregate_job_create


def item_adjudicate(*, item: Item, value: int | None, by) -> Item:
    """Set `item`'s final label to `value` (on the judgment scale; "can't judge" means the
    item has no label), or clear it with None; records who decided and when, and queues
    an aggregation so the campaign's measures follow."""
    if value is not None:
        choice_check(value, JudgmentValue.values, field="value", error=AnnotationError)
    if item.is_gold:
        raise AnnotationError(
            "Gold items have a known answer; they are not adjudicated.", field="item"
        )
    now = timezone.now()
    with transaction.atomic():
        Item.objects.filter(pk=item.pk).update(
            adjudicated_value=value,
            adjudicated_by=by if value is not None else None,
            adjudicated_at=now if value is not None else None,
        )
        campaign_aggregate_job_create(campaign=item.campaign, created_by=by)
    item.refresh_from_db(fields=["adjudicated_value", "adjudicated_by", "adjudicated_at"])
    return item
