from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from annotation.errors import AnnotationError, AnnotatorPaused, LeaseRefused, NothingToUndo
from annotation.models import Assignment, Campaign, CampaignAnnotator, Item, Judgment
from annotation.services.campaigns import campaign_create, campaign_grow
from annotation.services.judgments import judgment_submit, judgment_undo
from annotation.services.leasing import assignment_next, assignment_skip, leases_reap
from annotation.services.standing import annotator_reinstate
from corpora.models import Triple
from tests.annotation.conftest import add_members, make_corpus

pytestmark = pytest.mark.django_db


def create(corpus, **kwargs):
    """A campaign whose members are the test's annotators (made before it)."""
    options = {"name": "c", "size": 10, "gold_share": 0.0, "seed": 1} | kwargs
    campaign = campaign_create(corpus=corpus, **options)
    add_members(campaign)
    return campaign


def judge_all(campaign, annotator, value=2, now=None):
    judged = []
    while assignment := assignment_next(campaign=campaign, annotator=annotator, now=now):
        judgment_submit(assignment_id=assignment.pk, annotator=annotator, value=value, now=now)
        judged.append(assignment.item_id)
    return judged


def test_campaign_materializes_sampled_items(corpus):
    campaign = create(corpus, size=12, judgments_per_item=3)
    items = Item.objects.filter(campaign=campaign)
    assert campaign.item_count == 12 == items.count()
    assert set(items.values_list("slots_free", flat=True)) == {3}
    assert len(set(items.values_list("triple_id", flat=True))) == 12
    first = items.order_by("position").first()
    assert (first.head_id, first.relation_id, first.tail) == (
        first.triple.head_id,
        first.triple.relation_id,
        first.triple.tail,
    )


def test_same_seed_same_sample(corpus):
    a = create(corpus, name="a", seed=5)
    b = create(corpus, name="b", seed=5)
    c = create(corpus, name="c", seed=6)

    def picked(campaign):
        return list(
            Item.objects.filter(campaign=campaign).order_by("position").values_list("triple_id")
        )

    assert picked(a) == picked(b) != picked(c)


def test_stratified_by_relation_takes_equal_shares(corpus):
    campaign = create(corpus, size=8, sampling=Campaign.Sampling.RELATION)
    per_relation = Counter(
        Item.objects.filter(campaign=campaign).values_list("relation__name", flat=True)
    )
    assert per_relation == {"xNeed": 2, "xIntent": 2, "xWant": 2, "oEffect": 2}


def test_score_sampling_needs_scores(corpus):
    with pytest.raises(AnnotationError, match="needs critic scores"):
        create(corpus, sampling=Campaign.Sampling.SCORE)
    assert not Campaign.objects.exists()  # nothing half-made


def test_uncertain_first_orders_by_distance_from_half(db):
    scores = [i / 40 for i in range(40)]
    corpus = make_corpus(40, scores=scores)
    campaign = create(corpus, size=4, sampling=Campaign.Sampling.UNCERTAIN)
    score_of = dict(Triple.objects.with_score(corpus).values_list("pk", "score"))
    got = [
        score_of[triple_id]
        for triple_id in Item.objects.filter(campaign=campaign)
        .order_by("position")
        .values_list("triple_id", flat=True)
    ]
    assert got[0] == 0.5
    assert sorted(abs(s - 0.5) for s in got) == [abs(s - 0.5) for s in got]
    assert max(abs(s - 0.5) for s in got) <= 0.05


def test_grow_adds_only_new_triples(corpus):
    campaign = create(corpus, size=30)
    added = campaign_grow(campaign=campaign, size=30)
    assert added == 10
    campaign.refresh_from_db()
    assert campaign.item_count == 40
    triples = Item.objects.filter(campaign=campaign).values_list("triple_id", flat=True)
    assert len(set(triples)) == 40


def test_bad_settings_are_named(corpus):
    with pytest.raises(AnnotationError) as refused:
        create(corpus, judgments_per_item=0)
    assert refused.value.field == "judgments_per_item"
    assert str(refused.value) == "Ensure this value is greater than or equal to 1."


def test_next_returns_the_live_lease_until_it_is_judged(corpus, annotators):
    campaign = create(corpus)
    first = assignment_next(campaign=campaign, annotator=annotators[0])
    again = assignment_next(campaign=campaign, annotator=annotators[0])
    assert first.pk == again.pk
    judgment_submit(assignment_id=first.pk, annotator=annotators[0], value=1)
    after = assignment_next(campaign=campaign, annotator=annotators[0])
    assert after.item_id != first.item_id


def test_no_item_twice_and_never_more_than_k(corpus, annotators):
    campaign = create(corpus, size=5, judgments_per_item=3)
    seen = {a.pk: judge_all(campaign, a) for a in annotators}
    for items in seen.values():
        assert len(items) == len(set(items))
    assert sum(len(items) for items in seen.values()) == 15
    counts = Item.objects.filter(campaign=campaign).values_list("judgment_count", flat=True)
    assert set(counts) == {3}
    per_item = Counter(Judgment.objects.values_list("item_id", flat=True))
    assert set(per_item.values()) == {3}


def test_expired_lease_returns_the_item(corpus, annotators):
    a, b = annotators[:2]
    campaign = create(corpus, size=1, judgments_per_item=1, lease_seconds=60)
    held = assignment_next(campaign=campaign, annotator=a)
    assert assignment_next(campaign=campaign, annotator=b) is None
    later = timezone.now() + timedelta(seconds=61)
    taken = assignment_next(campaign=campaign, annotator=b, now=later)
    assert taken.item_id == held.item_id
    assert Assignment.objects.get(pk=held.pk).status == Assignment.Status.EXPIRED


def test_submit_on_expired_lease_accepted_while_item_needs_it(corpus, annotators):
    a = annotators[0]
    campaign = create(corpus, size=1, judgments_per_item=1, lease_seconds=60)
    held = assignment_next(campaign=campaign, annotator=a)
    later = timezone.now() + timedelta(seconds=120)
    assert leases_reap(campaign=campaign, now=later) == 1
    result = judgment_submit(assignment_id=held.pk, annotator=a, value=2, now=later)
    assert result.created
    assert Item.objects.get(pk=held.item_id).judgment_count == 1


def test_submit_on_expired_lease_refused_when_item_is_full(corpus, annotators):
    a, b = annotators[:2]
    campaign = create(corpus, size=1, judgments_per_item=1, lease_seconds=60)
    held = assignment_next(campaign=campaign, annotator=a)
    later = timezone.now() + timedelta(seconds=61)
    taken = assignment_next(campaign=campaign, annotator=b, now=later)
    judgment_submit(assignment_id=taken.pk, annotator=b, value=2, now=later)
    with pytest.raises(LeaseRefused, match="ran out"):
        judgment_submit(assignment_id=held.pk, annotator=a, value=-1, now=later)
    assert Judgment.objects.count() == 1
    assert Item.objects.get(pk=held.item_id).judgment_count == 1


def test_repeated_submit_stores_one_judgment(corpus, annotators):
    a = annotators[0]
    campaign = create(corpus)
    lease = assignment_next(campaign=campaign, annotator=a)
    first = judgment_submit(assignment_id=lease.pk, annotator=a, value=2)
    second = judgment_submit(assignment_id=lease.pk, annotator=a, value=2)
    assert first.created and not second.created
    assert second.judgment.pk == first.judgment.pk
    assert Judgment.objects.count() == 1
    assert Item.objects.get(pk=lease.item_id).judgment_count == 1


def test_values_off_the_scale_are_refused(corpus, annotators):
    campaign = create(corpus)
    lease = assignment_next(campaign=campaign, annotator=annotators[0])
    with pytest.raises(AnnotationError, match="one of 2, 1, -1, -2, -9"):
        judgment_submit(assignment_id=lease.pk, annotator=annotators[0], value=3)


def test_someone_elses_lease_is_not_found(corpus, annotators):
    campaign = create(corpus)
    lease = assignment_next(campaign=campaign, annotator=annotators[0])
    with pytest.raises(AnnotationError, match="not given to you"):
        judgment_submit(assignment_id=lease.pk, annotator=annotators[1], value=2)


def test_skip_gives_the_item_to_others_never_back(corpus, annotators):
    a, b = annotators[:2]
    campaign = create(corpus, size=1, judgments_per_item=1)
    lease = assignment_next(campaign=campaign, annotator=a)
    assignment_skip(assignment_id=lease.pk, annotator=a)
    assert assignment_next(campaign=campaign, annotator=a) is None
    assert assignment_next(campaign=campaign, annotator=b).item_id == lease.item_id


def test_undo_leases_the_item_again(corpus, annotators):
    a = annotators[0]
    campaign = create(corpus)
    lease = assignment_next(campaign=campaign, annotator=a)
    judgment_submit(assignment_id=lease.pk, annotator=a, value=-2, flagged=True)
    assignment_next(campaign=campaign, annotator=a)  # the next item is on screen
    undone = judgment_undo(campaign=campaign, annotator=a)
    assert undone.pk == lease.pk
    assert not Judgment.objects.exists()
    assert assignment_next(campaign=campaign, annotator=a).pk == lease.pk
    judgment_submit(assignment_id=lease.pk, annotator=a, value=1)
    assert Judgment.objects.get().value == 1
    assert Item.objects.get(pk=lease.item_id).judgment_count == 1


def test_undo_refused_once_the_item_is_complete(corpus, annotators):
    a, b = annotators[:2]
    campaign = create(corpus, size=1, judgments_per_item=2)
    judge_all(campaign, a)
    judge_all(campaign, b)
    with pytest.raises(NothingToUndo, match="can no longer be undone"):
        judgment_undo(campaign=campaign, annotator=a)
    with pytest.raises(NothingToUndo):
        judgment_undo(campaign=campaign, annotator=annotators[2])


def test_gold_is_mixed_in_and_hidden_in_items(corpus, annotators):
    campaign = create(corpus, size=10, gold_share=0.5, gold_count=6)
    assert campaign.gold_count == 6
    gold = Item.objects.filter(campaign=campaign, is_gold=True)
    assert set(gold.values_list("gold_acceptable", flat=True)) == {False}
    assert set(gold.values_list("slots_free", flat=True)) == {0}
    # Each swapped gold item pairs a tail with a head it was not written for.
    for item in gold:
        assert not Item.objects.filter(
            campaign=campaign, is_gold=False, head_id=item.head_id, tail=item.tail
        ).exists()
    Campaign.objects.filter(pk=campaign.pk).update(gold_share=1.0)
    campaign.refresh_from_db()
    lease = assignment_next(campaign=campaign, annotator=annotators[0])
    assert lease.item.is_gold


def test_annotator_below_gold_threshold_is_paused_until_reinstated(corpus, annotators):
    a = annotators[0]
    campaign = create(corpus, size=10, gold_share=0.5, gold_count=6, gold_min_answers=3)
    Campaign.objects.filter(pk=campaign.pk).update(gold_share=1.0)
    campaign.refresh_from_db()
    paused = False
    for _ in range(3):
        lease = assignment_next(campaign=campaign, annotator=a)
        assert lease.item.is_gold
        paused = judgment_submit(assignment_id=lease.pk, annotator=a, value=2).paused
    assert paused  # called three swapped (bad) triples good
    standing = CampaignAnnotator.objects.get(campaign=campaign, annotator=a)
    assert standing.paused and standing.gold_accuracy == 0.0
    with pytest.raises(AnnotatorPaused, match="reinstate"):
        assignment_next(campaign=campaign, annotator=a)
    annotator_reinstate(campaign=campaign, annotator=a)
    lease = assignment_next(campaign=campaign, annotator=a)
    assert not judgment_submit(assignment_id=lease.pk, annotator=a, value=2).paused


def test_gold_from_a_reference_file_is_known_good(corpus, tmp_path):
    reference = tmp_path / "references.tsv"
    reference.write_text(
        "".join(
            f"PersonX writes reference {i}\txNeed\tto find pen {i}\n"
            f"PersonX writes reference {i}\txWant\tto read it {i}\n"
            for i in range(10)
        )
    )
    campaign = create(corpus, size=10, gold_share=0.2, gold_count=8, gold_reference=reference)
    gold = Item.objects.filter(campaign=campaign, is_gold=True)
    assert Counter(gold.values_list("gold_acceptable", flat=True)) == {True: 4, False: 4}
    good = gold.filter(gold_acceptable=True).select_related("head").first()
    assert good.head.text.startswith("PersonX writes reference")


def test_closed_campaign_hands_out_nothing(corpus, annotators):
    from annotation.errors import CampaignClosed
    from annotation.services.campaigns import campaign_set_status

    campaign = campaign_set_status(campaign=create(corpus), status=Campaign.Status.CLOSED)
    with pytest.raises(CampaignClosed):
        assignment_next(campaign=campaign, annotator=annotators[0])


def test_an_assignment_is_only_found_in_its_own_campaign(corpus, annotators):
    a = annotators[0]
    mine, other = create(corpus, name="mine"), create(corpus, name="other")
    lease = assignment_next(campaign=mine, annotator=a)
    with pytest.raises(AnnotationError, match="not given to you"):
        judgment_submit(assignment_id=lease.pk, annotator=a, value=2, campaign=other)
    with pytest.raises(AnnotationError, match="not given to you"):
        assignment_skip(assignment_id=lease.pk, annotator=a, campaign=other)
    assert judgment_submit(assignment_id=lease.pk, annotator=a, value=2, campaign=mine).created


def test_expired_leases_return_within_seconds_while_other_items_remain(corpus, annotators):
    """Claims look for expired leases at most every REAP_EVERY_SECONDS (not on every
    request), and always when they find nothing else."""
    from django.core.cache import cache

    from annotation.services.leasing import REAP_EVERY_SECONDS, forget_early_gold

    a, b = annotators[:2]
    campaign = create(corpus, size=3, judgments_per_item=1, lease_seconds=60)
    held = assignment_next(campaign=campaign, annotator=a)
    later = timezone.now() + timedelta(seconds=61)
    assignment_next(campaign=campaign, annotator=b, now=later)  # within the reap interval
    assert Assignment.objects.get(pk=held.pk).status == Assignment.Status.LEASED
    cache.delete(f"annotation:reaped:{campaign.pk}")  # REAP_EVERY_SECONDS went by
    forget_early_gold()  # ... for this process's own timer too
    assert REAP_EVERY_SECONDS <= 10
    assignment_next(campaign=campaign, annotator=annotators[2], now=later)
    assert Assignment.objects.get(pk=held.pk).status == Assignment.Status.EXPIRED


def test_a_slot_given_back_behind_an_annotator_reaches_them_once_they_pass_the_end(
    corpus, annotators
):
    """Each claim looks after the annotator's last claimed item first (so someone who
    judged thousands alone does not walk past them again), and only then from the start."""
    a, b = annotators[:2]
    campaign = create(corpus, size=4, judgments_per_item=1, lease_seconds=60)
    order = list(
        Item.objects.filter(campaign=campaign).order_by("position").values_list("pk", flat=True)
    )
    held_by_b = assignment_next(campaign=campaign, annotator=b)
    assert held_by_b.item_id == order[0]
    now = timezone.now()
    judged = []
    for _ in range(3):
        lease = assignment_next(campaign=campaign, annotator=a, now=now)
        judgment_submit(assignment_id=lease.pk, annotator=a, value=2, now=now)
        judged.append(lease.item_id)
    assert judged == order[1:]
    assert assignment_next(campaign=campaign, annotator=a, now=now) is None
    later = now + timedelta(seconds=61)  # b's lease runs out: its slot comes back
    assert assignment_next(campaign=campaign, annotator=a, now=later).item_id == order[0]
