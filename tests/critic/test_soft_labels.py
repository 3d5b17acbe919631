"""Soft and weighted labels: the critic learns each crowd label with its certainty (the
Dawid-Skene posterior) instead of a hard majority; an adjudicated label is certain; audit
labels are never trained on."""

import numpy as np
import pytest

from annotation.models import Campaign, Item
from annotation.services.adjudication import item_adjudicate
from annotation.services.aggregation import campaign_aggregate
from annotation.services.campaigns import campaign_create
from critic.corpus_data import relation_verbalizations, triples_by_id
from critic.labels import corpus_labels
from critic.ml.fast import train_fast_critic
from critic.models import CriticConfig
from critic.services.config import artifact_root, critic_config_update
from critic.services.loading import critic_load
from critic.services.training import critic_train
from critic.tiers import LearningOptions, TrainingSet
from tests.annotation.conftest import make_corpus
from tests.annotation.test_review import judge, regular
from tests.factories import UserFactory

# What three annotators answer on the learning campaign's items, by their order. Each of
# them is the odd one out once on an acceptable triple and once on another, so that
# Dawid-Skene trusts them alike (about 5 in 6).
ANSWERS = [
    (2, 2, 2),  # 0 unanimous: acceptable
    (2, 2, -2),  # 1 two against one: acceptable
    (-2, 2, 2),  # 2
    (2, -2, 2),  # 3 two against one, then adjudicated "not"
    (2, 1, 2),  # 4
    (1, 2, 2),  # 5
    (-2, -2, -2),  # 6 unanimous: not
    (2, -2, -1),  # 7 two against one: not
    (-2, 2, -2),  # 8
    (-2, -2, 2),  # 9
    (-1, -1, -1),  # 10
    (-2, -1, -2),  # 11
]
UNANIMOUS_YES, SPLIT_YES, ADJUDICATED, UNANIMOUS_NO, SPLIT_NO = 0, 1, 3, 6, 7


@pytest.fixture
def judged(db):
    """A learning campaign judged by three annotators as ANSWERS says (one adjudicated),
    and an audit campaign on other triples, unanimous."""
    corpus = make_corpus(40)
    people = [UserFactory(username=f"soft-{n}", role="annotator") for n in range(3)]
    learning = campaign_create(corpus=corpus, name="learn", size=12, gold_share=0.0, seed=3)
    items = regular(learning)
    order = {item.pk: n for n, item in enumerate(items)}
    judge(learning, people, lambda who, item: ANSWERS[order[item.pk]][who])
    campaign_aggregate(campaign=learning)
    researcher = UserFactory(username="adjudicator", role="researcher")
    item_adjudicate(item=items[ADJUDICATED], value=-2, by=researcher)
    audit = campaign_create(
        corpus=corpus,
        name="audit",
        size=6,
        gold_share=0.0,
        seed=4,
        purpose=Campaign.Purpose.AUDIT,
    )
    judge(audit, people, lambda who, item: 2 if item.pk % 2 else -2)
    campaign_aggregate(campaign=audit)
    return corpus, regular(learning), regular(audit)


def _certainty_of(labels, item: Item) -> float:
    return float(labels.certainty[labels.triple_ids == item.triple_id][0])


def test_a_disagreement_weighs_less_than_a_unanimous_label_and_an_adjudication_fully(judged):
    corpus, items, audit_items = judged
    labels = corpus_labels(corpus_id=corpus.pk)
    learn = labels.learning
    certainty = {n: _certainty_of(learn, item) for n, item in enumerate(items)}
    assert 0.5 < certainty[SPLIT_YES] < 0.95 < certainty[UNANIMOUS_YES] <= 1.0
    assert 0.5 < certainty[SPLIT_NO] < 0.95 < certainty[UNANIMOUS_NO] <= 1.0
    # Adjudicated: certain, and on the researcher's side.
    assert certainty[ADJUDICATED] == 1.0
    assert int(learn.labels[learn.triple_ids == items[ADJUDICATED].triple_id][0]) == 0

    # What each way of counting labels trains on, per item.
    def training_set(weighting: str) -> TrainingSet:
        return TrainingSet(
            chunk=triples_by_id(learn.triple_ids),
            labels=learn.labels.astype(np.int64),
            positives=learn.positives,
            relations={},
            verbalizations={},
            confidence=learn.certainty,
            options=LearningOptions(label_weighting=weighting),
        )

    position = {int(t): i for i, t in enumerate(learn.triple_ids)}
    at = [position[item.triple_id] for item in items]
    weighted = training_set("weighted").sample_weight
    assert weighted[at[SPLIT_YES]] < weighted[at[UNANIMOUS_YES]]
    assert weighted[at[SPLIT_NO]] < weighted[at[UNANIMOUS_NO]]
    assert weighted.mean() == pytest.approx(1.0)
    assert weighted[at[ADJUDICATED]] == weighted.max()
    soft = training_set("soft").targets
    assert 0.5 < soft[at[SPLIT_YES]] < soft[at[UNANIMOUS_YES]] <= 1.0
    assert 0.0 <= soft[at[UNANIMOUS_NO]] < soft[at[SPLIT_NO]] < 0.5
    assert soft[at[ADJUDICATED]] == 0.0
    hard = training_set("hard")
    assert hard.targets is None and hard.sample_weight is None

    # Audit labels are measured against, never learned from.
    audit_triples = {item.triple_id for item in audit_items}
    assert audit_triples == set(labels.auditing.triple_ids.tolist())
    assert set(learn.triple_ids.tolist()) == {item.triple_id for item in items}


def _vectors(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    u = rng.standard_normal((n, 8)).astype(np.float32)
    v = rng.standard_normal((n, 8)).astype(np.float32)
    relation = rng.integers(0, 3, n)
    labels = ((u * v).sum(axis=1) > 0).astype(int)
    labels[relation == 2] = 1
    return u, v, relation, labels


def test_the_fast_head_learns_a_soft_label_as_a_probability_and_a_weight_as_a_weight():
    u, v, relation, labels = _vectors(900)
    uncertain = relation == 2
    hard = train_fast_critic(u, v, relation, 3, labels)
    # Every relation-2 label is "acceptable", but with a posterior of 0.7: the soft head
    # says about 0.7 there, the hard one nearly 1.
    targets = np.where(uncertain, 0.7, labels)
    soft = train_fast_critic(u, v, relation, 3, labels, targets=targets)
    assert hard.critic.predict(u, v, relation)[uncertain].mean() > 0.9
    assert 0.6 < soft.critic.predict(u, v, relation)[uncertain].mean() < 0.8

    # A label weighing 0 is as if it were not there.
    flipped = 1 - labels[:300]
    both = train_fast_critic(
        np.concatenate([u, u[:300]]),
        np.concatenate([v, v[:300]]),
        np.concatenate([relation, relation[:300]]),
        3,
        np.concatenate([labels, flipped]),
        sample_weight=np.concatenate([np.ones(900), np.zeros(300)]),
    )
    np.testing.assert_allclose(both.critic.model.coef_, hard.critic.model.coef_, atol=2e-3)


def _fast_coefficients(version) -> np.ndarray:
    return critic_load(version).critic.model.coef_.copy()


@pytest.mark.one_leg
@pytest.mark.django_db
def test_a_version_learns_what_the_setting_says_from_the_posterior(labelled_corpus):
    """The imported labels are certain; made uncertain, each setting trains otherwise."""
    critic_config_update(corpus=labelled_corpus, label_weighting="hard")
    hard = critic_train(corpus=labelled_corpus, queue_rescore=False)
    critic_config_update(corpus=labelled_corpus, label_weighting="soft")
    certain = critic_train(corpus=labelled_corpus, queue_rescore=False)
    # Every label certain: soft is hard.
    np.testing.assert_allclose(_fast_coefficients(certain), _fast_coefficients(hard), atol=1e-6)

    # A third of the crowd's labels become 2-against-1 (posterior 2/3).
    items = Item.objects.filter(campaign__corpus=labelled_corpus).order_by("pk")
    doubtful = list(items.values_list("pk", flat=True)[::3])
    Item.objects.filter(pk__in=doubtful).update(ds_confidence=2 / 3, majority_confidence=2 / 3)
    versions = {}
    for weighting in ("hard", "weighted", "soft"):
        critic_config_update(corpus=labelled_corpus, label_weighting=weighting)
        versions[weighting] = critic_train(corpus=labelled_corpus, queue_rescore=False)
    coefficients = {name: _fast_coefficients(v) for name, v in versions.items()}
    np.testing.assert_allclose(coefficients["hard"], _fast_coefficients(hard), atol=1e-6)
    assert not np.allclose(coefficients["weighted"], coefficients["hard"], atol=1e-3)
    assert not np.allclose(coefficients["soft"], coefficients["hard"], atol=1e-3)
    # A soft head is less sure of the doubtful labels than the hard one.
    chunk = triples_by_id(
        np.array(items.filter(pk__in=doubtful).values_list("triple_id", flat=True))
    )
    verbalizations = relation_verbalizations()
    confident = {
        name: np.abs(critic_load(v).score(chunk, verbalizations) - 0.5).mean()
        for name, v in versions.items()
    }
    assert confident["soft"] < confident["hard"]
    saved = np.load(artifact_root() / versions["soft"].labels_file)
    assert not saved["audit"].any()


@pytest.mark.django_db
def test_the_settings_are_checked(labelled_corpus):
    from critic.errors import CriticError

    with pytest.raises(CriticError) as caught:
        critic_config_update(corpus=labelled_corpus, label_weighting="fuzzy")
    assert caught.value.field == "label_weighting"
    with pytest.raises(CriticError) as caught:
        critic_config_update(corpus=labelled_corpus, name_draws=0)
    assert caught.value.field == "name_draws"
    config = critic_config_update(corpus=labelled_corpus, name_swap=True, name_draws=7)
    assert (config.name_swap, config.name_draws) == (True, 7)
    assert config.label_weighting in CriticConfig.LabelWeighting.values


@pytest.mark.django_db
def test_the_dashboard_settings_form_saves_them(labelled_corpus, researcher, client):
    from django.urls import reverse

    from critic.services.config import critic_config_get

    client.force_login(researcher)
    form = {
        "tier": "fast",
        "encoder": "all-MiniLM-L6-v2",
        "retrain_every": 5,
        "name_swap": "on",
        "name_draws": 4,
        "label_weighting": "weighted",
    }
    response = client.post(reverse("critic:config", args=[labelled_corpus.pk]), form)
    assert response.status_code == 302
    config = critic_config_get(corpus=labelled_corpus)
    assert (config.name_swap, config.name_draws, config.label_weighting) == (True, 4, "weighted")
