"""Leases: the claim of an item (one SQL statement on PostgreSQL), the next item to judge,
skips, and reaping leases whose time ran out.

Invariants kept here and in `judgments`, on SQLite and PostgreSQL alike:
- an annotator never gets the same item twice (unique assignment per item and annotator);
- an item never gets more than k judgments (its `slots_free` counts what is left,
  leases included, and is only changed by conditional updates inside a transaction).

PostgreSQL claims items with SELECT ... FOR UPDATE SKIP LOCKED, so annotators
never wait on each other; SQLite takes the write lock when each transaction
begins (settings: transaction_mode IMMEDIATE), so claims run one at a time.
"""

from __future__ import annotations

import random
from contextlib import nullcontext
from datetime import datetime, timedelta
from time import monotonic
from typing import NamedTuple

from django.core.cache import cache
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from core import db
from core.roles import is_researcher
from corpora.models import Event

from ..errors import AnnotatorPaused, AssignmentNotFound, CampaignClosed, NotMember
from ..models import Assignment, Campaign, CampaignAnnotator, Item, TrainingAnswer
from .items import _give_back
from .standing import _pause_reason, _standing, pause_message
from .training import training_guard

_gold_dice = random.SystemRandom()


def leases_reap(*, campaign: Campaign, now: datetime | None = None) -> int:
    """Expire the campaign's leases whose time ran out; their items go back to the pool."""
    now = now or timezone.now()
    with transaction.atomic():
        expired = list(
            Assignment.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(campaign=campaign, status=Assignment.Status.LEASED, expires_at__lt=now)
            .values_list("pk", "item_id")
        )
        if not expired:
            return 0
        Assignment.objects.filter(pk__in=[pk for pk, _ in expired]).update(
            status=Assignment.Status.EXPIRED
        )
        _give_back([item_id for _, item_id in expired])
    return len(expired)


def _lease(campaign: Campaign, item_id: int, annotator, now: datetime) -> Assignment:
    return Assignment.objects.create(
        campaign=campaign,
        item_id=item_id,
        annotator=annotator,
        leased_at=now,
        expires_at=now + timedelta(seconds=campaign.lease_seconds),
    )


def _unseen(annotator):
    return ~Exists(Assignment.objects.filter(item=OuterRef("pk"), annotator=annotator))


_CLAIM_GOLD_POSTGRES = """
WITH picked AS (
    SELECT i.id FROM {item} i
    WHERE i.campaign_id = %(campaign)s AND i.is_gold
      AND NOT EXISTS (
          SELECT 1 FROM {assignment} a WHERE a.item_id = i.id AND a.annotator_id = %(annotator)s
      )
      AND NOT EXISTS (
          SELECT 1 FROM {training} t WHERE t.campaign_id = %(campaign)s
            AND t.annotator_id = %(annotator)s AND t.item_id = i.id
      )
    ORDER BY i.position
    LIMIT 1
), leased AS (
    INSERT INTO {assignment} (campaign_id, item_id, annotator_id, status, leased_at, expires_at)
    SELECT %(campaign)s, picked.id, %(annotator)s, 'leased', %(now)s, %(expires)s FROM picked
    ON CONFLICT DO NOTHING
    RETURNING id, item_id
)
SELECT leased.id, leased.item_id, e.text, i.tail, i.relation_id
FROM leased JOIN {item} i ON i.id = leased.item_id JOIN {event} e ON e.id = i.head_id
"""


def _claim_gold(campaign: Campaign, annotator, now: datetime) -> Assignment | None:
    """The first gold item (in campaign order) this annotator has neither seen nor trained
    on, leased to them (gold takes no slot): one statement on PostgreSQL."""
    if connection.vendor == "postgresql":
        return _claim_gold_postgres(campaign, annotator, now)
    gold = Item.objects.filter(campaign=campaign, is_gold=True).filter(_unseen(annotator))
    if campaign.training_size:  # what they trained on would be no test of them
        trained = TrainingAnswer.objects.filter(
            campaign=campaign, annotator=annotator, item=OuterRef("pk")
        )
        gold = gold.filter(~Exists(trained))
    item_id = gold.order_by("position").values_list("pk", flat=True).first()
    if item_id is None:
        return None
    try:
        with transaction.atomic():
            return _lease(campaign, item_id, annotator, now)
    except IntegrityError:  # the same annotator claiming in two tabs at once
        return None


def _claim_gold_postgres(campaign: Campaign, annotator, now: datetime) -> Assignment | None:
    expires = now + timedelta(seconds=campaign.lease_seconds)
    sql = _CLAIM_GOLD_POSTGRES.format(
        item=Item._meta.db_table,
        assignment=Assignment._meta.db_table,
        training=TrainingAnswer._meta.db_table,
        event=Event._meta.db_table,
    )
    params = {"campaign": campaign.pk, "annotator": annotator.pk, "now": now, "expires": expires}
    # A savepoint only inside a caller's transaction (as in _claim_postgres).
    with transaction.atomic() if connection.in_atomic_block else nullcontext():
        row = db.fetchone(sql, params)
    if row is None:  # no gold left for them, or the same annotator claiming in two tabs
        return None
    assignment_id, item_id, *shown = row
    assignment = Assignment(
        pk=assignment_id,
        campaign=campaign,
        item_id=item_id,
        annotator=annotator,
        status=Assignment.Status.LEASED,
        leased_at=now,
        expires_at=expires,
    )
    assignment.shown = tuple(shown)
    return assignment


_CLAIM_POSTGRES = """
WITH picked AS (
    SELECT i.id, i.position FROM {item} i
    WHERE i.campaign_id = %(campaign)s AND i.slots_free > 0 {after}
      AND NOT EXISTS (
          SELECT 1 FROM {assignment} a WHERE a.item_id = i.id AND a.annotator_id = %(annotator)s
      )
    ORDER BY i.position
    LIMIT 1
    FOR UPDATE {skip}
), taken AS (
    UPDATE {item} SET slots_free = {item}.slots_free - 1
    FROM picked WHERE {item}.id = picked.id
    RETURNING {item}.id
), leased AS (
    INSERT INTO {assignment} (campaign_id, item_id, annotator_id, status, leased_at, expires_at)
    SELECT %(campaign)s, taken.id, %(annotator)s, 'leased', %(now)s, %(expires)s FROM taken
    RETURNING id, item_id
), moved AS (
    UPDATE {standing} SET claim_position = GREATEST(claim_position, picked.position) FROM picked
    WHERE campaign_id = %(campaign)s AND annotator_id = %(annotator)s
)
SELECT leased.id, leased.item_id, e.text, i.tail, i.relation_id
FROM leased JOIN {item} i ON i.id = leased.item_id JOIN {event} e ON e.id = i.head_id
"""

_CLAIM_SQLITE = """
UPDATE {item} SET slots_free = slots_free - 1
WHERE id = (
    SELECT i.id FROM {item} i
    WHERE i.campaign_id = %(campaign)s AND i.slots_free > 0 {after}
      AND NOT EXISTS (
          SELECT 1 FROM {assignment} a WHERE a.item_id = i.id AND a.annotator_id = %(annotator)s
      )
    ORDER BY i.position
    LIMIT 1
)
RETURNING id, position
"""
_AFTER_CURSOR = "AND i.position > %(after)s"

# How long a claim waits for an item that is only locked for an instant by someone
# else's claim or submit, before answering that nothing is left.
CLAIM_LOCK_WAIT = "2s"


def _claim_item(
    campaign: Campaign, annotator, now: datetime, after: int | None = None
) -> Assignment | None:
    """Take a slot of the first item (in campaign order) this annotator has not seen,
    and lease it to them: one statement on PostgreSQL, three on SQLite.

    `after`: the annotator's claim cursor (it only moves forward). Items up to it are
    mostly ones they judged already, so they are looked at only when nothing after it
    is left (a slot given back there, or the end of the campaign)."""
    if after is not None:
        claimed = _claim_item_from(campaign, annotator, now, after)
        if claimed is not None:
            return claimed
    return _claim_item_from(campaign, annotator, now, None)


def _claim_item_from(
    campaign: Campaign, annotator, now: datetime, after: int | None
) -> Assignment | None:
    expires = now + timedelta(seconds=campaign.lease_seconds)
    params = {
        "campaign": campaign.pk,
        "annotator": annotator.pk,
        "now": now,
        "expires": expires,
        "after": after,
    }
    parts = {
        "item": Item._meta.db_table,
        "assignment": Assignment._meta.db_table,
        "event": Event._meta.db_table,
        "standing": CampaignAnnotator._meta.db_table,
        "after": _AFTER_CURSOR if after is not None else "",
    }
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            row = _claim_postgres(cursor, parts, params, campaign, annotator, after)
            if row is None:
                return None
            assignment_id, item_id, *shown = row
        else:
            cursor.execute(_CLAIM_SQLITE.format(**parts), params)
            row = cursor.fetchone()
            if row is None:
                return None
            item_id, position = row
            CampaignAnnotator.objects.filter(campaign=campaign, annotator=annotator).update(
                claim_position=Greatest(Coalesce("claim_position", position), position)
            )
            return _lease(campaign, item_id, annotator, now)
    assignment = Assignment(
        pk=assignment_id,
        campaign=campaign,
        item_id=item_id,
        annotator=annotator,
        status=Assignment.Status.LEASED,
        leased_at=now,
        expires_at=expires,
    )
    assignment.shown = tuple(shown)  # (head, tail, relation id): item_view needs no query
    return assignment


CLAIM_TRIES = 3
_claim_sql: dict[str, str] = {}


def _claim_statement(parts: dict, skip: str = "SKIP LOCKED") -> str:
    key = f"{parts['after']}|{skip}"
    sql = _claim_sql.get(key)
    if sql is None:
        sql = _claim_sql[key] = _CLAIM_POSTGRES.format(skip=skip, **parts)
    return sql


def _claim_postgres(cursor, parts: dict, params: dict, campaign, annotator, after) -> tuple | None:
    """The claim statement's row (PostgreSQL), or None when nothing is left."""
    for _ in range(CLAIM_TRIES):
        try:
            # A savepoint only inside a caller's transaction: alone, the statement is
            # its own transaction and a failure leaves nothing to undo.
            with transaction.atomic() if connection.in_atomic_block else nullcontext():
                row = db.fetchone(_claim_statement(parts), params)
            if row is None and _claimable_exists(campaign, annotator, after):
                # Every item left is locked by another transaction at this instant
                # (SKIP LOCKED passed it over): wait for it rather than say "nothing left".
                try:
                    with transaction.atomic():
                        cursor.execute(f"SET LOCAL lock_timeout = '{CLAIM_LOCK_WAIT}'")
                        row = db.fetchone(_claim_statement(parts, skip=""), params)
                        cursor.execute("SET LOCAL lock_timeout = 0")
                except OperationalError:
                    row = None
            return row
        except IntegrityError:
            # The same annotator claiming in two tabs at once: the other tab leased
            # this item after this statement began, which its check for items already
            # seen could not see (it reads the statement's snapshot). Look again.
            continue
    return None


def _claimable_exists(campaign: Campaign, annotator, after: int | None = None) -> bool:
    claimable = Item.objects.filter(campaign=campaign, slots_free__gt=0)
    if after is not None:
        claimable = claimable.filter(position__gt=after)
    return claimable.filter(_unseen(annotator)).exists()


# Gold is front-loaded: every annotator meets at least GOLD_EARLY gold items among their
# first GOLD_EARLY_WINDOW, spread at random; later the dice of gold_share decide.
GOLD_EARLY = 5
GOLD_EARLY_WINDOW = 20


# (campaign, annotator) pairs past their early window, known to this process: later
# claims then cost nothing here (the shared cache tells the other processes).
_early_done: set[tuple[int, int]] = set()
EARLY_DONE_MAX = 200_000


def _early_gold_need(campaign: Campaign, annotator) -> tuple[int, int] | None:
    """(gold items still owed, claims left in the early window), or None once the window
    is behind them (remembered in this process and in the cache)."""
    pair = (campaign.pk, annotator.pk)
    if pair in _early_done:
        return None
    key = f"annotation:gold-early-done:{campaign.pk}:{annotator.pk}"
    if cache.get(key):
        _remember_early_done(pair)
        return None
    seen = Assignment.objects.filter(campaign=campaign, annotator=annotator).aggregate(
        n=Count("pk"), gold=Count("pk", filter=Q(item__is_gold=True))
    )
    need, left = GOLD_EARLY - seen["gold"], GOLD_EARLY_WINDOW - seen["n"]
    if need <= 0 or left <= 0:
        cache.set(key, 1, timeout=None)
        _remember_early_done(pair)
        return None
    return need, left


def forget_early_gold() -> None:
    """Forget what this process knows of early windows (tests: ids come back) and when it
    last looked for expired leases."""
    _early_done.clear()
    _next_reap_check.clear()


def _remember_early_done(pair: tuple[int, int]) -> None:
    if len(_early_done) >= EARLY_DONE_MAX:
        _early_done.clear()
    _early_done.add(pair)


def _gold_turn(campaign: Campaign, annotator) -> bool:
    """Whether this claim should be a gold item."""
    if not campaign.gold_count:
        return False
    early = _early_gold_need(campaign, annotator)
    if early is not None:
        need, left = early
        return need >= left or _gold_dice.random() < max(need / left, campaign.gold_share)
    return _gold_dice.random() < campaign.gold_share


# Expired leases are looked for at most this often per campaign (and always when a
# claim finds nothing), not on every request.
REAP_EVERY_SECONDS = 5


# When this process next asks the shared cache whether a reap is due, per campaign: the
# file cache's add() is a few file operations, too many to pay on every claim.
_next_reap_check: dict[int, float] = {}


def _reap_now_and_then(campaign: Campaign, now: datetime) -> None:
    clock = monotonic()
    if _next_reap_check.get(campaign.pk, 0.0) > clock:
        return
    if len(_next_reap_check) > 1000:
        _next_reap_check.clear()
    _next_reap_check[campaign.pk] = clock + REAP_EVERY_SECONDS
    if cache.add(f"annotation:reaped:{campaign.pk}", 1, timeout=REAP_EVERY_SECONDS):
        leases_reap(campaign=campaign, now=now)


_STANDING_AND_LIVE_LEASE = """
SELECT s.paused, s.claim_position, (
    SELECT a.id FROM {assignment} a
    WHERE a.campaign_id = s.campaign_id AND a.annotator_id = s.annotator_id
      AND a.status = 'leased' AND a.expires_at >= %s
    ORDER BY a.leased_at DESC, a.id DESC
    LIMIT 1
), s.qualified_at IS NOT NULL
FROM {standing} s WHERE s.campaign_id = %s AND s.annotator_id = %s
"""


class Standing(NamedTuple):
    """What a claim needs to know of the annotator's standing."""

    paused: bool
    claim_position: int | None
    live_lease_id: int | None
    qualified: bool


def _standing_and_live_lease(campaign: Campaign, annotator, now: datetime) -> Standing | None:
    """(paused, claim cursor, live lease id, qualified) in one query (every claim asks for
    them); None before the annotator's first visit to the campaign."""
    sql = _STANDING_AND_LIVE_LEASE.format(
        assignment=Assignment._meta.db_table, standing=CampaignAnnotator._meta.db_table
    )
    row = db.fetchone(
        sql, [connection.ops.adapt_datetimefield_value(now), campaign.pk, annotator.pk]
    )
    return Standing(bool(row[0]), row[1], row[2], bool(row[3])) if row else None


def assignment_next(
    *,
    campaign: Campaign,
    annotator,
    now: datetime | None = None,
    standing: Standing | None = None,
) -> Assignment | None:
    """The item this annotator should judge now: their live lease, or a new claim.

    None when the campaign has nothing left for them. Refused (NotMember) for an annotator
    who is not a member of the campaign; a researcher becomes a member on their first visit.
    `standing`: what a submit just read of it (SubmitResult.standing), to save the query.
    """
    now = now or timezone.now()
    if campaign.status != Campaign.Status.OPEN:
        raise CampaignClosed(f"Campaign '{campaign.name}' is closed.")
    if not annotator.is_active:
        raise NotMember("Your account is deactivated.")
    _reap_now_and_then(campaign, now)
    # On PostgreSQL each step stands alone (a claim is one statement), so no transaction
    # wraps them; SQLite's claim takes several statements.
    with transaction.atomic() if connection.vendor == "sqlite" else nullcontext():
        if standing is None:
            standing = _standing_and_live_lease(campaign, annotator, now)
        if standing is None:
            # Only members judge; a researcher becomes one on their first visit.
            if not is_researcher(annotator):
                raise NotMember(
                    f"You are not an annotator of the campaign '{campaign.name}'. "
                    "Open the link the researchers gave you, or ask them to add you."
                )
            _standing(campaign, annotator)
            standing = _standing_and_live_lease(campaign, annotator, now)
        paused, after, live_id, qualified = standing
        if paused:
            raise AnnotatorPaused(pause_message(_pause_reason(campaign, annotator)))
        if live_id is not None:
            return Assignment.objects.get(pk=live_id)
        if campaign.training_size and not qualified:
            training_guard(campaign=campaign, annotator=annotator)
        if _gold_turn(campaign, annotator):
            gold = _claim_gold(campaign, annotator, now)
            if gold:
                return gold
        claimed = _claim_item(campaign, annotator, now, after)
        if claimed is None and leases_reap(campaign=campaign, now=now):
            claimed = _claim_item(campaign, annotator, now)
        return claimed


def assignment_skip(
    *,
    assignment_id: int,
    annotator,
    campaign: Campaign | None = None,
    now: datetime | None = None,  # accepted for symmetry with the other lease calls
) -> None:
    """The annotator passes on an item: it goes back to others and never returns to them.

    With `campaign`, an assignment of another campaign is not found."""
    with transaction.atomic():
        assignment = _locked_assignment(assignment_id, annotator, campaign)
        if assignment.status != Assignment.Status.LEASED:
            return  # already judged, skipped or expired: a repeated skip changes nothing
        assignment.status = Assignment.Status.SKIPPED
        assignment.save(update_fields=["status"])
        _give_back([assignment.item_id])


def _locked_assignment(
    assignment_id: int, annotator, campaign: Campaign | None = None
) -> Assignment:
    mine = Assignment.objects.filter(pk=assignment_id, annotator=annotator)
    if campaign is not None:
        mine = mine.filter(campaign=campaign)
    paused = CampaignAnnotator.objects.filter(
        campaign=OuterRef("campaign"), annotator=annotator, paused=True
    )
    try:
        return (
            mine.select_for_update(of=("self",))
            .select_related("item", "campaign")
            .defer("campaign__stats", "campaign__instructions")
            .annotate(annotator_paused=Exists(paused))
            .get()
        )
    except Assignment.DoesNotExist:
        raise AssignmentNotFound("That item was not given to you.") from None
