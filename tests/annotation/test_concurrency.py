"""Many annotators claiming and answering at once against the real database.

Threads share one campaign (60 items, k=3, a 10-second lease, gold on): some
answer twice, some skip, some undo, some let a lease run out (they ask for the
next item with a `now` past its expiry, which reaps every lease that old, other
people's included), and two threads share one annotator (two browser tabs).
Afterwards the bookkeeping must match the rows exactly. SQLite runs the claims
one at a time (BEGIN IMMEDIATE); PostgreSQL claims with SKIP LOCKED.
"""

import random
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.db.models import Count, Exists, OuterRef
from django.utils import timezone

from annotation.errors import AnnotationError
from annotation.models import Assignment, Campaign, Item, Judgment
from annotation.services.campaigns import campaign_create
from annotation.services.judgments import judgment_submit, judgment_undo
from annotation.services.leasing import assignment_next, assignment_skip
from tests.annotation.conftest import add_members, make_corpus
from tests.factories import UserFactory

K = 3
ITEMS = 60
LEASE = 10
MAX_STEPS = 600  # per thread: a loop that never ends is a failure, not a hang


def answer_for(item: Item, rng: random.Random) -> int:
    if item.is_gold:  # careful annotators: nobody is paused halfway
        return 2 if item.gold_acceptable else -2
    return rng.choice((2, 1, -1, -2, -9))


def unseen_left(campaign, user) -> bool:
    seen = Assignment.objects.filter(item=OuterRef("pk"), annotator=user)
    return Item.objects.filter(campaign=campaign, slots_free__gt=0).filter(~Exists(seen)).exists()


def work(campaign, user, behaviour: str, seed: int, refusals: list, errors: list) -> None:
    """One annotator (or one tab of one) judging until nothing is left for them."""
    rng = random.Random(seed)
    early_nones = 0
    try:
        for _ in range(MAX_STEPS):
            try:
                lease = assignment_next(campaign=campaign, annotator=user)
                if lease is None:
                    # PostgreSQL's SKIP LOCKED passes over items others hold locked for an
                    # instant, so None can come while one is still free (see the test
                    # below): ask again, as a person reloading the page would.
                    if unseen_left(campaign, user) and early_nones < 100:
                        early_nones += 1
                        time.sleep(0.01)
                        continue
                    return
                if behaviour == "expire" and rng.random() < 0.15:
                    # Walk away from the item: the next request comes after the lease (and
                    # every other lease as old) ran out; the answer to it comes late.
                    later = timezone.now() + timedelta(seconds=LEASE + 1)
                    assignment_next(campaign=campaign, annotator=user, now=later)
                    item = Item.objects.get(pk=lease.item_id)
                    judgment_submit(
                        assignment_id=lease.pk, annotator=user, value=answer_for(item, rng)
                    )
                    continue
                if behaviour == "skip" and rng.random() < 0.2:
                    assignment_skip(assignment_id=lease.pk, annotator=user)
                    continue
                value = answer_for(Item.objects.get(pk=lease.item_id), rng)
                judgment_submit(assignment_id=lease.pk, annotator=user, value=value)
                if behaviour == "double":
                    judgment_submit(
                        assignment_id=lease.pk, annotator=user, value=2 if value != 2 else -1
                    )
                if behaviour == "undo" and rng.random() < 0.2:
                    again = judgment_undo(campaign=campaign, annotator=user)
                    judgment_submit(assignment_id=again.pk, annotator=user, value=value)
            except AnnotationError as exc:
                refusals.append(exc)
        errors.append(AssertionError(f"{user.username} ({behaviour}) did not finish"))
    except BaseException as exc:  # noqa: BLE001 - reported by the test
        errors.append(exc)
    finally:
        connections.close_all()


def run_threads(campaign, plan, refusals, errors, seed) -> None:
    threads = [
        threading.Thread(
            target=work, args=(campaign, user, behaviour, seed + n, refusals, errors), daemon=True
        )
        for n, (user, behaviour) in enumerate(plan)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"


def assert_bookkeeping(campaign: Campaign) -> None:
    judged = Counter(Judgment.objects.filter(campaign=campaign).values_list("item_id", flat=True))
    leased = Counter(
        Assignment.objects.filter(campaign=campaign, status="leased").values_list(
            "item_id", flat=True
        )
    )
    for item in Item.objects.filter(campaign=campaign):
        assert item.judgment_count == judged[item.pk], item
        if not item.is_gold:
            assert judged[item.pk] <= K, item
            assert item.slots_free == K - judged[item.pk] - leased[item.pk], item
            assert item.slots_free >= 0, item
        else:
            assert item.slots_free == 0, item
    twice = (
        Judgment.objects.filter(campaign=campaign)
        .values("item_id", "annotator_id")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
    )
    assert not twice.exists()
    twice = (
        Assignment.objects.filter(campaign=campaign)
        .values("item_id", "annotator_id")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
    )
    assert not twice.exists()
    submitted = Assignment.objects.filter(campaign=campaign, status="submitted").count()
    assert submitted == sum(judged.values())


def test_many_annotators_at_once_keep_every_invariant(transactional_db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    corpus = make_corpus(ITEMS * 2)
    campaign = campaign_create(
        corpus=corpus,
        name="crowd",
        size=ITEMS,
        judgments_per_item=K,
        lease_seconds=LEASE,
        gold_share=0.1,
        gold_min_answers=3,
        seed=11,
    )
    assert campaign.gold_count > 0
    users = [UserFactory(role="annotator") for _ in range(12)]
    add_members(campaign, users)
    behaviours = ["plain", "double", "skip", "expire", "undo", "plain"] * 2
    plan = list(zip(users, behaviours, strict=True))
    plan.append((users[0], "plain"))  # a second tab of the first annotator
    plan.append((users[3], "expire"))  # and of one who walks away
    refusals: list[Exception] = []
    errors: list[BaseException] = []

    run_threads(campaign, plan, refusals, errors, seed=100)
    assert errors == []
    assert all(isinstance(exc, AnnotationError) for exc in refusals)
    assert_bookkeeping(campaign)

    # Leases that walked-away annotators let run out gave their slots back, possibly after
    # others had finished: everyone comes back once more, plainly, for what is left.
    run_threads(campaign, [(user, "plain") for user in users], refusals, errors, seed=200)
    assert errors == []
    assert all(isinstance(exc, AnnotationError) for exc in refusals)
    assert_bookkeeping(campaign)

    items = Item.objects.filter(campaign=campaign, is_gold=False)
    assert items.count() == ITEMS
    assert set(items.values_list("judgment_count", flat=True)) == {K}
    assert set(items.values_list("slots_free", flat=True)) == {0}
    assert Judgment.objects.filter(campaign=campaign, item__is_gold=False).count() == ITEMS * K
    assert not Assignment.objects.filter(campaign=campaign, status="leased").exists()


def test_nothing_left_is_not_answered_while_an_item_is_only_locked(transactional_db, settings):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no row locks: claims run one at a time")
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    campaign = campaign_create(corpus=make_corpus(4), name="last", size=1, gold_share=0.0, seed=1)
    item = Item.objects.get(campaign=campaign)
    locked, release = threading.Event(), threading.Event()

    def hold_the_row() -> None:  # what a submit or a claim by someone else does for an instant
        try:
            with transaction.atomic():
                Item.objects.select_for_update().get(pk=item.pk)
                locked.set()
                release.wait(timeout=0.3)  # a claim or submit holds a row only for an instant
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_the_row)
    holder.start()
    try:
        assert locked.wait(timeout=30)
        newcomer = UserFactory(role="annotator")
        add_members(campaign, [newcomer])
        lease = assignment_next(campaign=campaign, annotator=newcomer)
    finally:
        release.set()
        holder.join(timeout=30)
    assert lease is not None  # the item has 3 free slots


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's claim statement")
def test_two_tabs_claiming_the_last_item_at_once_get_it_once_and_no_error(transactional_db):
    """Tab A's claim holds the campaign's one item locked; tab B (same annotator) waits
    for it, and when A commits, B's statement, which began before, cannot see A's lease
    and tried to lease the item again (a unique-key error). B must answer "nothing
    left for you" instead."""
    corpus = make_corpus(4)
    campaign = campaign_create(
        corpus=corpus, name="last", size=1, judgments_per_item=K, lease_seconds=600, seed=3
    )
    user = UserFactory(role="annotator")
    add_members(campaign, [user])  # made beforehand, so that B does not wait on it
    got: dict = {}
    a_holds_the_item = threading.Event()

    def tab_a() -> None:
        try:
            with transaction.atomic():
                got["a"] = assignment_next(campaign=campaign, annotator=user)
                a_holds_the_item.set()
                time.sleep(0.5)  # B is waiting on the item's lock meanwhile
        finally:
            connections.close_all()

    thread = threading.Thread(target=tab_a)
    thread.start()
    assert a_holds_the_item.wait(10)
    got["b"] = assignment_next(campaign=campaign, annotator=user)
    thread.join(10)
    assert got["a"] is not None and got["b"] is None
    assert Assignment.objects.filter(campaign=campaign, annotator=user).count() == 1
