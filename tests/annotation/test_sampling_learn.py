"""Learning where it matters: near a preset's line (per relation), and where the critic and
the crowd disagree most."""

import numpy as np
import pytest

from annotation.errors import AnnotationError
from annotation.models import Campaign, Item
from annotation.sampling import (
    Candidates,
    Disagreement,
    NearTheLine,
    choose,
    crowd_labels,
    design_weights,
)
from annotation.services.campaigns import campaign_create, campaign_grow
from annotation.services.labels import campaign_import_labels
from corpora.models import Triple

from .conftest import make_corpus


def two_relations(n: int, seed: int = 0) -> Candidates:
    """n triples of relation 1 and n of relation 2, scores spread evenly over 0..1."""
    rng = np.random.default_rng(seed)
    scores = rng.random(2 * n)
    relations = np.repeat([1, 2], n)
    return Candidates(np.arange(2 * n, dtype=np.int64), relations, scores)


LINES = NearTheLine(threshold=0.5, relation_thresholds=((1, 0.25), (2, 0.8)))


def test_near_the_line_draws_around_each_relations_own_threshold():
    found = two_relations(20_000)
    picked = choose(candidates=found, size=600, sampling=LINES, seed=4)
    assert len(picked) == len(set(picked.tolist())) == 600
    for relation, line in ((1, 0.25), (2, 0.8)):
        scores = found.scores[picked][found.relation_ids[picked] == relation]
        assert abs(np.median(scores) - line) < 0.03
        # A uniform draw puts 20% within 0.1 of the line; this puts most there.
        assert np.mean(np.abs(scores - line) < 0.1) > 0.7
    # Relation 2's line is not relation 1's: its picks stay near 0.8, not 0.25 or 0.5.
    high = found.scores[picked][found.relation_ids[picked] == 2]
    assert np.mean(np.abs(high - 0.25) < 0.1) < 0.05


def test_near_the_line_picks_each_triple_with_its_inclusion_probability():
    found = two_relations(30, seed=1)
    pi = LINES.inclusion(found, 10)
    assert pi.sum() == pytest.approx(10) and pi.max() <= 1.0
    counts = np.zeros(len(found.ids))
    draws = 4000
    for seed in range(draws):
        counts[choose(candidates=found, size=10, sampling=LINES, seed=seed)] += 1
    assert np.abs(counts / draws - pi).max() < 0.04


def test_near_the_line_design_weights_keep_estimates_unbiased():
    """Horvitz-Thompson: weights 1/inclusion give the corpus's acceptance without bias, though
    the draw crowds the line."""
    found = two_relations(2_000, seed=2)
    acceptable = found.scores > 0.6  # far more acceptable triples than near the lines
    truth = acceptable.mean()
    estimates, naive = [], []
    for seed in range(300):
        picked = choose(candidates=found, size=200, sampling=LINES, seed=seed)
        weights = design_weights(candidates=found, picked=picked, sampling=LINES)
        estimates.append((weights * acceptable[picked]).sum() / len(found.ids))
        naive.append(acceptable[picked].mean())
    assert np.mean(estimates) == pytest.approx(truth, abs=0.01)
    assert abs(np.mean(naive) - truth) > 0.05  # the unweighted picks are biased


def test_near_the_line_leaves_unscored_triples_out():
    found = two_relations(200)
    found.scores[::2] = np.nan
    picked = choose(candidates=found, size=150, sampling=LINES, seed=1)
    assert len(picked) == 150 and not np.isnan(found.scores[picked]).any()


def test_disagreement_picks_the_critic_against_the_crowd_first():
    ids = np.arange(10, dtype=np.int64)
    scores = np.array([0.95, 0.1, 0.5, 0.9, 0.05, 0.6, 0.2, 0.99, 0.4, 0.7])
    found = Candidates(ids, np.zeros(10, dtype=np.int64), scores)
    # The crowd says: 0 no (critic 0.95), 4 yes (critic 0.05), 7 yes (agrees), 8 no, 2 yes;
    # 1, 3, 5, 6 and 9 have no label.
    strategy = Disagreement(
        labelled_ids=np.array([0, 2, 4, 7, 8]), labels=np.array([0, 1, 1, 1, 0], dtype=np.int8)
    )
    picked = choose(candidates=found, size=10, sampling=strategy, seed=3)
    # Gaps .95 and .95 (in either order), .5 (uncertain), .4, .01 (agreed).
    assert sorted(picked[:2].tolist()) == [0, 4]
    assert picked[2:].tolist() == [2, 8, 7]
    assert design_weights(candidates=found, picked=picked, sampling=strategy).tolist() == [1.0] * 5


# --- Through the campaign service ---------------------------------------------------


def scored_corpus(n: int, name: str = "lines"):
    """Two relations, scores spread evenly over 0..1 within each."""
    corpus = make_corpus(n, name=name, relations=("xWant", "oEffect"))
    return corpus


def score_evenly(corpus) -> None:
    from corpora.scores import score_set_write

    ids = list(Triple.objects.filter(corpus=corpus).order_by("id").values_list("id", flat=True))
    rng = np.random.default_rng(0)
    score_set_write(
        corpus=corpus, scores=dict(zip(ids, rng.random(len(ids)).tolist(), strict=True))
    )


@pytest.mark.django_db
def test_a_near_the_line_campaign_samples_around_the_thresholds_it_is_given():
    corpus = scored_corpus(4_000)
    score_evenly(corpus)
    campaign = campaign_create(
        corpus=corpus,
        name="near",
        size=300,
        sampling=Campaign.Sampling.NEAR_LINE,
        sampling_params={"threshold": 0.5, "relation_thresholds": {"oEffect": 0.85}},
        gold_share=0.0,
        seed=1,
    )
    rows = list(
        Item.objects.filter(campaign=campaign)
        .select_related("triple")
        .values_list("relation__name", "triple_id", "weight")
    )
    scores = dict(
        Triple.objects.filter(corpus=corpus).with_score(corpus).values_list("id", "score")
    )
    for relation, line in (("xWant", 0.5), ("oEffect", 0.85)):
        picked = np.array([scores[t] for r, t, _ in rows if r == relation])
        assert np.mean(np.abs(picked - line) < 0.1) > 0.6, relation
    # The weights are design weights: 1/inclusion, about the corpus's size in all.
    assert sum(w for *_, w in rows) == pytest.approx(4_000, rel=0.25)
    assert campaign.sampling_params["relation_thresholds"] == {"oEffect": 0.85}
    # Growing it draws around the same lines.
    campaign_grow(campaign=campaign, size=100)
    assert Item.objects.filter(campaign=campaign).count() == 400


@pytest.mark.django_db
def test_a_near_the_line_campaign_without_a_threshold_is_refused():
    corpus = scored_corpus(100)
    score_evenly(corpus)
    with pytest.raises(AnnotationError, match="draws around a threshold") as refused:
        campaign_create(corpus=corpus, name="near", size=10, sampling=Campaign.Sampling.NEAR_LINE)
    assert refused.value.field == "sampling"
    assert not Campaign.objects.filter(name="near").exists()
    with pytest.raises(AnnotationError, match="Unknown relation"):
        campaign_create(
            corpus=corpus,
            name="near",
            size=10,
            sampling=Campaign.Sampling.NEAR_LINE,
            sampling_params={"threshold": 0.5, "relation_thresholds": {"xNope": 0.3}},
        )


def label_corpus(corpus, valid_of: dict[int, int]) -> Campaign:
    """The crowd's labels, imported the way an SKD release's `valid` values are."""
    import orjson

    for triple_id, valid in valid_of.items():
        Triple.objects.filter(pk=triple_id).update(
            source_fields=orjson.dumps({"valid": valid}).decode()
        )
    return campaign_import_labels(corpus=corpus, name=f"labels {len(valid_of)}")


@pytest.mark.django_db
def test_a_disagreement_campaign_asks_first_where_the_critic_contradicts_the_crowd():
    from corpora.scores import score_set_write

    corpus = make_corpus(40, name="crowd")
    ids = list(Triple.objects.filter(corpus=corpus).order_by("id").values_list("id", flat=True))
    scores = {t: 0.5 + 0.01 * (i % 10) for i, t in enumerate(ids)}  # mild scores
    wrong_yes, wrong_no = ids[3], ids[7]  # crowd: acceptable / not; critic: sure it's not
    scores[wrong_yes], scores[wrong_no] = 0.02, 0.97
    agreed = ids[:20]
    score_set_write(corpus=corpus, scores=scores)
    crowd = {t: 2 if scores[t] > 0.5 else -2 for t in agreed}
    crowd[wrong_yes], crowd[wrong_no] = 2, -2
    label_corpus(corpus, crowd)
    campaign = campaign_create(
        corpus=corpus,
        name="disagree",
        size=5,
        sampling=Campaign.Sampling.DISAGREEMENT,
        gold_share=0.0,
        seed=2,
    )
    order = list(
        Item.objects.filter(campaign=campaign)
        .order_by("position")
        .values_list("triple_id", flat=True)
    )
    assert set(order[:2]) == {wrong_yes, wrong_no}
    assert set(order) <= set(agreed)  # only triples the crowd labelled
    assert set(Item.objects.filter(campaign=campaign).values_list("weight", flat=True)) == {1.0}


@pytest.mark.django_db
def test_disagreement_leaves_out_audit_and_adjudicated_triples():
    corpus = make_corpus(12, name="kept apart")
    ids = list(Triple.objects.filter(corpus=corpus).order_by("id").values_list("id", flat=True))
    learning = label_corpus(corpus, {t: 2 for t in ids[:6]})
    Triple.objects.filter(pk__in=ids[1:6]).update(source_fields="{}")
    audit = campaign_import_labels(corpus=corpus, name="audit")  # ids[0] only
    Campaign.objects.filter(pk=audit.pk).update(purpose=Campaign.Purpose.AUDIT)
    Item.objects.filter(campaign=learning, triple_id=ids[1]).update(adjudicated_value=-2)
    found, labels = crowd_labels(corpus_id=corpus.pk)
    # Audit labels stay unseen by training; an adjudicated label is final.
    assert found.tolist() == ids[2:6] and labels.tolist() == [1] * 4


@pytest.mark.django_db
def test_disagreement_without_crowd_labels_is_refused():
    corpus = make_corpus(20, name="unlabelled", scores=[0.5] * 20)
    with pytest.raises(AnnotationError, match="has none to learn from"):
        campaign_create(corpus=corpus, name="d", size=5, sampling=Campaign.Sampling.DISAGREEMENT)


def test_near_the_line_without_relation_thresholds_draws_around_the_overall_one():
    found = two_relations(5_000)
    one_line = NearTheLine(threshold=0.7)
    picked = choose(candidates=found, size=300, sampling=one_line, seed=2)
    assert abs(np.median(found.scores[picked]) - 0.7) < 0.05
