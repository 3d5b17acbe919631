"""Writes of the annotation app: campaigns, leases, judgments, annotator standing.

Invariants every function here keeps, on SQLite and PostgreSQL alike:
- an annotator never gets the same item twice (unique assignment per item and annotator);
- an item never gets more than k judgments (its `slots_free` counts what is left,
  leases included, and is only changed by conditional updates inside a transaction);
- a repeated submit stores one judgment (unique judgment per item and annotator).

PostgreSQL claims items with SELECT ... FOR UPDATE SKIP LOCKED, so annotators
never wait on each other; SQLite takes the write lock when each transaction
begins (settings: transaction_mode IMMEDIATE), so claims run one at a time.
"""

from __future__ import annotations

import random
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import Exists, F, Max, OuterRef
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from corpora.formats import FormatError, detect_format, normalize_tail, open_binary, read_rows
from corpora.models import Corpus, Event, Relation, Triple
from jobs.models import Job
from jobs.services import job_create, job_enqueue, job_run

from .models import Assignment, Campaign, CampaignAnnotator, Item, Judgment, JudgmentValue
from .sampling import SamplingError, choose, corpus_candidates, design_weights

GOLD_POOL_MAX = 1000
GOLD_POOL_MIN = 20
_gold_dice = random.SystemRandom()


class AnnotationError(Exception):
    """A request the rules refuse; the message is meant for the person who made it."""


class CampaignClosed(AnnotationError):
    pass


class AnnotatorPaused(AnnotationError):
    pass


class LeaseRefused(AnnotationError):
    pass


class NothingToUndo(AnnotationError):
    pass


class AssignmentNotFound(AnnotationError):
    pass


# --- Campaigns ----------------------------------------------------------------


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
            "position, is_gold, gold_source, slots_free, judgment_count, weight) "
            "SELECT %s, t.id, t.head_id, t.relation_id, t.tail, p.position, FALSE, '', %s, 0, "
            "p.weight "
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


def _add_triples(*, campaign: Campaign, size: int) -> int:
    candidates = corpus_candidates(corpus_id=campaign.corpus_id, exclude_campaign_id=campaign.pk)
    seed = campaign.seed + campaign.item_count  # a grown campaign draws new numbers
    try:
        picked = choose(candidates=candidates, size=size, sampling=campaign.sampling, seed=seed)
    except SamplingError as exc:
        raise AnnotationError(str(exc)) from exc
    return _insert_items(
        campaign=campaign,
        triple_ids=candidates.ids[picked],
        weights=design_weights(candidates=candidates, picked=picked, sampling=campaign.sampling),
        first_position=_next_position(campaign),
    )


def _refresh_item_counts(campaign: Campaign) -> None:
    items = Item.objects.filter(campaign=campaign)
    campaign.item_count = items.filter(is_gold=False).count()
    campaign.gold_count = items.filter(is_gold=True).count()
    Campaign.objects.filter(pk=campaign.pk).update(
        item_count=campaign.item_count, gold_count=campaign.gold_count
    )


def campaign_create(
    *,
    corpus: Corpus,
    name: str,
    size: int,
    sampling: str = Campaign.Sampling.UNIFORM,
    purpose: str = Campaign.Purpose.LEARNING,
    judgments_per_item: int = 3,
    gold_share: float = 0.1,
    gold_threshold: float = 0.7,
    gold_min_answers: int = 5,
    lease_seconds: int = 600,
    instructions: str = "",
    seed: int | None = None,
    gold_reference: str | Path | None = None,
    gold_count: int | None = None,
    created_by=None,
) -> Campaign:
    """Create a campaign and materialize its items (and gold) in one transaction."""
    if size < 1:
        raise AnnotationError("A campaign needs a size of at least 1.")
    campaign = Campaign(
        corpus=corpus,
        name=name,
        sampling=sampling,
        purpose=purpose,
        judgments_per_item=judgments_per_item,
        gold_share=gold_share,
        gold_threshold=gold_threshold,
        gold_min_answers=gold_min_answers,
        lease_seconds=lease_seconds,
        instructions=instructions,
        seed=random.randrange(2**31) if seed is None else seed,
        created_by=created_by,
    )
    try:
        campaign.full_clean()
    except ValidationError as exc:
        raise AnnotationError(
            "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items())
        ) from exc
    with transaction.atomic():
        campaign.save()
        added = _add_triples(campaign=campaign, size=size)
        if not added:
            raise AnnotationError(f"Corpus '{corpus.name}' has no triples to sample.")
        if gold_share > 0:
            wanted = gold_count or min(GOLD_POOL_MAX, max(GOLD_POOL_MIN, round(size * gold_share)))
            if gold_reference:
                gold_add_from_reference(
                    campaign=campaign, path=gold_reference, count=(wanted + 1) // 2
                )
                wanted -= (wanted + 1) // 2
            gold_add_swapped(campaign=campaign, count=wanted, reference=gold_reference)
        _refresh_item_counts(campaign)
    return campaign


def campaign_grow(*, campaign: Campaign, size: int) -> int:
    """Add up to `size` more triples of the corpus, not already in the campaign."""
    if size < 1:
        raise AnnotationError("Grow by at least 1 item.")
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        added = _add_triples(campaign=campaign, size=size)
        _refresh_item_counts(campaign)
    return added


def campaign_set_status(*, campaign: Campaign, status: str) -> Campaign:
    Campaign.objects.filter(pk=campaign.pk).update(status=status)
    campaign.status = status
    return campaign


# --- Gold -------------------------------------------------------------------


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


# --- Leases -----------------------------------------------------------------


def _give_back(item_ids: list[int]) -> None:
    """Return one slot per expired or skipped lease, locking items in id order."""
    for item_id, n in sorted(Counter(item_ids).items()):
        Item.objects.filter(pk=item_id, is_gold=False).update(slots_free=F("slots_free") + n)


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


def _standing(campaign: Campaign, annotator) -> CampaignAnnotator:
    standing, _ = CampaignAnnotator.objects.get_or_create(campaign=campaign, annotator=annotator)
    return standing


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


def _claim_gold(campaign: Campaign, annotator, now: datetime) -> Assignment | None:
    item_id = (
        Item.objects.filter(campaign=campaign, is_gold=True)
        .filter(_unseen(annotator))
        .order_by("position")
        .values_list("pk", flat=True)
        .first()
    )
    if item_id is None:
        return None
    try:
        with transaction.atomic():
            return _lease(campaign, item_id, annotator, now)
    except IntegrityError:  # the same annotator claiming in two tabs at once
        return None


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


def _claim_postgres(cursor, parts: dict, params: dict, campaign, annotator, after) -> tuple | None:
    """The claim statement's row (PostgreSQL), or None when nothing is left."""
    for _ in range(CLAIM_TRIES):
        try:
            # A savepoint only inside a caller's transaction: alone, the statement is
            # its own transaction and a failure leaves nothing to undo.
            with transaction.atomic() if connection.in_atomic_block else nullcontext():
                cursor.execute(_CLAIM_POSTGRES.format(skip="SKIP LOCKED", **parts), params)
                row = cursor.fetchone()
            if row is None and _claimable_exists(campaign, annotator, after):
                # Every item left is locked by another transaction at this instant
                # (SKIP LOCKED passed it over): wait for it rather than say "nothing left".
                try:
                    with transaction.atomic():
                        cursor.execute(f"SET LOCAL lock_timeout = '{CLAIM_LOCK_WAIT}'")
                        cursor.execute(_CLAIM_POSTGRES.format(skip="", **parts), params)
                        row = cursor.fetchone()
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


# Expired leases are looked for at most this often per campaign (and always when a
# claim finds nothing), not on every request.
REAP_EVERY_SECONDS = 5


def _reap_now_and_then(campaign: Campaign, now: datetime) -> None:
    if cache.add(f"annotation:reaped:{campaign.pk}", 1, timeout=REAP_EVERY_SECONDS):
        leases_reap(campaign=campaign, now=now)


_STANDING_AND_LIVE_LEASE = """
SELECT s.paused, s.claim_position, (
    SELECT a.id FROM {assignment} a
    WHERE a.campaign_id = s.campaign_id AND a.annotator_id = s.annotator_id
      AND a.status = 'leased' AND a.expires_at >= %s
    ORDER BY a.leased_at DESC, a.id DESC
    LIMIT 1
)
FROM {standing} s WHERE s.campaign_id = %s AND s.annotator_id = %s
"""


def _standing_and_live_lease(
    campaign: Campaign, annotator, now: datetime
) -> tuple[bool, int | None, int | None] | None:
    """(paused, claim cursor, live lease id) in one query (every claim asks for them);
    None before the annotator's first visit to the campaign."""
    sql = _STANDING_AND_LIVE_LEASE.format(
        assignment=Assignment._meta.db_table, standing=CampaignAnnotator._meta.db_table
    )
    with connection.cursor() as cursor:
        cursor.execute(
            sql, [connection.ops.adapt_datetimefield_value(now), campaign.pk, annotator.pk]
        )
        row = cursor.fetchone()
    return (bool(row[0]), row[1], row[2]) if row else None


def assignment_next(
    *, campaign: Campaign, annotator, now: datetime | None = None
) -> Assignment | None:
    """The item this annotator should judge now: their live lease, or a new claim.

    None when the campaign has nothing left for them.
    """
    now = now or timezone.now()
    if campaign.status != Campaign.Status.OPEN:
        raise CampaignClosed(f"Campaign '{campaign.name}' is closed.")
    _reap_now_and_then(campaign, now)
    # On PostgreSQL each step stands alone (a claim is one statement), so no transaction
    # wraps them; SQLite's claim takes several statements.
    with transaction.atomic() if connection.vendor == "sqlite" else nullcontext():
        standing = _standing_and_live_lease(campaign, annotator, now)
        if standing is None:  # first visit: the standing row is made, then read
            _standing(campaign, annotator)
            standing = _standing_and_live_lease(campaign, annotator, now)
        paused, after, live_id = standing
        if paused:
            raise AnnotatorPaused(
                "Your judgments in this campaign are paused for review of your accuracy. "
                "A researcher can reinstate you."
            )
        if live_id is not None:
            return Assignment.objects.get(pk=live_id)
        if campaign.gold_count and _gold_dice.random() < campaign.gold_share:
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


# --- Judgments ----------------------------------------------------------------


@dataclass(frozen=True)
class SubmitResult:
    judgment: Judgment
    created: bool
    paused: bool = False


def _score_gold(campaign: Campaign, annotator, item: Item, value: int, sign: int) -> bool:
    """Add (sign=1) or take back (sign=-1) a gold answer; True if the annotator is now paused."""
    if not item.is_gold or value == JudgmentValue.CANT_JUDGE:
        return False
    correct = int((value > 0) == item.gold_acceptable)
    _standing(campaign, annotator)
    CampaignAnnotator.objects.filter(campaign=campaign, annotator=annotator).update(
        gold_answered=F("gold_answered") + sign, gold_correct=F("gold_correct") + sign * correct
    )
    standing = CampaignAnnotator.objects.get(campaign=campaign, annotator=annotator)
    if (
        sign > 0
        and not standing.reinstated
        and not standing.paused
        and standing.gold_answered >= campaign.gold_min_answers
        and standing.gold_accuracy < campaign.gold_threshold
    ):
        annotator_pause(campaign=campaign, annotator=annotator)
        return True
    return False


def judgment_submit(
    *,
    assignment_id: int,
    annotator,
    value: int,
    flagged: bool = False,
    campaign: Campaign | None = None,
    now: datetime | None = None,
) -> SubmitResult:
    """Store the annotator's judgment of a leased item, exactly once.

    With `campaign`, an assignment of another campaign is not found."""
    now = now or timezone.now()
    if value not in JudgmentValue.values:
        raise AnnotationError(
            f"A judgment is one of {', '.join(map(str, JudgmentValue.values))}; got {value!r}."
        )
    if connection.vendor == "postgresql":
        stored = _submit_on_live_lease(assignment_id, annotator, value, flagged, campaign, now)
        if stored is not None:
            return stored
    with transaction.atomic():
        assignment = _locked_assignment(assignment_id, annotator, campaign)
        if assignment.status == Assignment.Status.SUBMITTED:
            existing = Judgment.objects.get(item_id=assignment.item_id, annotator=annotator)
            return SubmitResult(judgment=existing, created=False)
        item, campaign = assignment.item, assignment.campaign
        if campaign.status != Campaign.Status.OPEN:
            raise CampaignClosed(
                f"Campaign '{campaign.name}' is closed: your answer was not stored."
            )
        if assignment.status == Assignment.Status.LEASED:
            # The lease still holds its slot (even if its time ran out and no
            # one reaped it yet): the slot becomes the judgment's.
            Item.objects.filter(pk=item.pk).update(judgment_count=F("judgment_count") + 1)
        elif item.is_gold:
            Item.objects.filter(pk=item.pk).update(judgment_count=F("judgment_count") + 1)
        else:
            # The lease expired or was skipped: accept only if a slot is still free.
            taken = Item.objects.filter(pk=item.pk, slots_free__gt=0).update(
                slots_free=F("slots_free") - 1, judgment_count=F("judgment_count") + 1
            )
            if not taken:
                raise LeaseRefused(
                    "Your time on this triple ran out and other people have since judged it "
                    "as many times as needed, so this answer was not stored."
                )
        if assignment.annotator_paused:
            raise AnnotatorPaused("Your judgments in this campaign are paused.")
        judgment = Judgment.objects.create(
            campaign=campaign,
            item=item,
            annotator=annotator,
            assignment=assignment,
            value=value,
            flagged=flagged,
            created_at=now,
            seconds=max(0.0, (now - assignment.leased_at).total_seconds()),
        )
        assignment.status = Assignment.Status.SUBMITTED
        assignment.save(update_fields=["status"])
        paused = _score_gold(campaign, annotator, item, value, +1)
    return SubmitResult(judgment=judgment, created=True, paused=paused)


# The common submit in one statement: a regular item of an open campaign, leased to an
# annotator who is not paused. Anything else (a repeat, an expired or skipped lease, gold,
# a closed campaign) matches no row here and takes judgment_submit's general path.
_SUBMIT_POSTGRES = """
WITH lease AS (
    SELECT a.id, a.item_id, a.campaign_id, a.leased_at
    FROM {assignment} a JOIN {item} i ON i.id = a.item_id
    WHERE a.id = %(assignment)s AND a.annotator_id = %(annotator)s AND a.status = 'leased'
      AND NOT i.is_gold {in_campaign}
      AND EXISTS (SELECT 1 FROM {campaign} o WHERE o.id = a.campaign_id AND o.status = 'open')
      AND NOT EXISTS (
          SELECT 1 FROM {standing} s
          WHERE s.campaign_id = a.campaign_id AND s.annotator_id = a.annotator_id AND s.paused
      )
    FOR UPDATE OF a
), counted AS (
    UPDATE {item} SET judgment_count = {item}.judgment_count + 1
    FROM lease WHERE {item}.id = lease.item_id
), judged AS (
    INSERT INTO {judgment}
        (campaign_id, item_id, annotator_id, assignment_id, value, flagged, created_at, seconds)
    SELECT campaign_id, item_id, %(annotator)s, id, %(value)s, %(flagged)s, %(now)s,
           GREATEST(0, EXTRACT(EPOCH FROM %(now)s - leased_at))
    FROM lease
    RETURNING id, item_id, assignment_id, seconds
), submitted AS (
    UPDATE {assignment} SET status = 'submitted' FROM lease WHERE {assignment}.id = lease.id
)
SELECT judged.id, judged.item_id, judged.seconds, {campaign_columns}
FROM judged JOIN {campaign} c ON c.id = (SELECT campaign_id FROM lease)
"""
# The campaign comes back with the judgment (a combined submit+next needs it).
_SUBMIT_CAMPAIGN_FIELDS = [
    f.attname for f in Campaign._meta.concrete_fields if f.name not in ("stats", "instructions")
]


def _submit_on_live_lease(
    assignment_id: int, annotator, value: int, flagged: bool, campaign, now: datetime
) -> SubmitResult | None:
    parts = {
        "assignment": Assignment._meta.db_table,
        "item": Item._meta.db_table,
        "standing": CampaignAnnotator._meta.db_table,
        "judgment": Judgment._meta.db_table,
        "campaign": Campaign._meta.db_table,
        "campaign_columns": ", ".join(
            f"c.{connection.ops.quote_name(name)}" for name in _SUBMIT_CAMPAIGN_FIELDS
        ),
        "in_campaign": "AND a.campaign_id = %(campaign)s" if campaign is not None else "",
    }
    params = {
        "assignment": assignment_id,
        "annotator": annotator.pk,
        "value": value,
        "flagged": flagged,
        "now": now,
        "campaign": campaign.pk if campaign is not None else None,
    }
    with connection.cursor() as cursor:
        cursor.execute(_SUBMIT_POSTGRES.format(**parts), params)
        row = cursor.fetchone()
    if row is None:
        return None
    judgment_id, item_id, seconds, *campaign_values = row
    judgment = Judgment(
        pk=judgment_id,
        campaign=Campaign.from_db(connection.alias, _SUBMIT_CAMPAIGN_FIELDS, campaign_values),
        item_id=item_id,
        annotator=annotator,
        assignment_id=assignment_id,
        value=value,
        flagged=flagged,
        created_at=now,
        seconds=seconds,
    )
    return SubmitResult(judgment=judgment, created=True)


def judgment_undo(*, campaign: Campaign, annotator, now: datetime | None = None) -> Assignment:
    """Take back the annotator's last judgment while its item is still open; the item
    is leased to them again so they can answer anew."""
    now = now or timezone.now()
    with transaction.atomic():
        status = Campaign.objects.filter(pk=campaign.pk).values_list("status", flat=True).first()
        if status != Campaign.Status.OPEN:
            raise CampaignClosed(
                f"Campaign '{campaign.name}' is closed: its judgments can no longer be undone."
            )
        judgment = (
            Judgment.objects.select_for_update(of=("self",))
            .select_related("item", "assignment")
            .filter(campaign=campaign, annotator=annotator, assignment__isnull=False)
            .order_by("-created_at", "-pk")
            .first()
        )
        if judgment is None:
            raise NothingToUndo("There is no judgment of yours to undo in this campaign.")
        item = Item.objects.select_for_update().get(pk=judgment.item_id)
        if not item.is_gold and item.judgment_count >= campaign.judgments_per_item:
            raise NothingToUndo(
                "Your last judgment can no longer be undone: its triple has all the "
                "judgments it needs."
            )
        assignment = judgment.assignment
        value = judgment.value
        judgment.delete()
        # The last aggregation counted this judgment: make it look stale.
        Campaign.objects.filter(pk=campaign.pk, aggregated_at__gte=judgment.created_at).update(
            aggregated_at=judgment.created_at - timedelta(microseconds=1)
        )
        Item.objects.filter(pk=item.pk).update(judgment_count=F("judgment_count") - 1)
        assignment.status = Assignment.Status.LEASED
        assignment.leased_at = now
        assignment.expires_at = now + timedelta(seconds=campaign.lease_seconds)
        assignment.save(update_fields=["status", "leased_at", "expires_at"])
        _score_gold(campaign, annotator, item, value, -1)
    return assignment


# --- Annotator standing -----------------------------------------------------------


def annotator_pause(*, campaign: Campaign, annotator) -> None:
    """Pause an annotator: no new items, live leases returned, judgments left out of
    aggregation until a researcher reinstates them."""
    now = timezone.now()
    with transaction.atomic():
        CampaignAnnotator.objects.filter(campaign=campaign, annotator=annotator).update(
            paused=True, paused_at=now
        )
        live = list(
            Assignment.objects.select_for_update(of=("self",))
            .filter(campaign=campaign, annotator=annotator, status=Assignment.Status.LEASED)
            .values_list("pk", "item_id")
        )
        if live:
            Assignment.objects.filter(pk__in=[pk for pk, _ in live]).update(
                status=Assignment.Status.EXPIRED
            )
            _give_back([item_id for _, item_id in live])


def annotator_reinstate(*, campaign: Campaign, annotator) -> None:
    CampaignAnnotator.objects.update_or_create(
        campaign=campaign,
        annotator=annotator,
        defaults={"paused": False, "paused_at": None, "reinstated": True},
    )


# --- Aggregation and imported labels -----------------------------------------------

AGGREGATE_JOB = "campaign_aggregate"


def campaign_aggregate(*, campaign: Campaign) -> dict:
    """Item labels, agreement, acceptance and the annotator table (see aggregating.py)."""
    from .aggregating import campaign_aggregate as run

    return run(campaign=campaign)


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


def campaign_aggregate_job_create(*, campaign: Campaign, created_by=None) -> Job:
    """Queue an aggregation unless one for this campaign is already waiting or running."""
    from .tasks import run_aggregate_job

    with transaction.atomic():
        pending = Job.objects.filter(
            kind=AGGREGATE_JOB, status__in=Job.ACTIVE_STATUSES, params__campaign_id=campaign.pk
        ).first()
        if pending:
            return pending
        job = job_create(
            kind=AGGREGATE_JOB, params={"campaign_id": campaign.pk}, created_by=created_by
        )
        job_enqueue(job=job, task=run_aggregate_job)
    return job


def campaign_aggregate_job_run(*, job_id: int, attempt: int | None = None) -> Job | None:
    def body(job: Job, progress) -> dict:
        campaign = Campaign.objects.get(pk=job.params["campaign_id"])
        stats = campaign_aggregate(campaign=campaign)
        return {
            "campaign": campaign.name,
            "judgments": stats["judgments"],
            "items_labelled": stats["items_labelled"],
        }

    return job_run(job_id=job_id, attempt=attempt, body=body)
