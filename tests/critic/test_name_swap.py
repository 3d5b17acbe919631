"""The paper's name swap: PersonX/PersonY read as common first names, a draw at a time;
a version learns every label in each draw and scores a triple as the mean over the draws.
Both tiers, at training and at scoring."""

import numpy as np
import pytest

from critic.corpus_data import chunk_texts, relation_verbalizations, triples_by_id
from critic.labels import corpus_labels
from critic.ml.cross import CrossEncoderScorer, train_cross_encoder
from critic.ml.embedding import chunk_embeddings
from critic.ml.fast import train_fast_critic
from critic.ml.store import text_keys
from critic.ml.texts import NAMES, PERSON, draw_names, pair_texts, swap_names
from critic.models import CriticConfig
from critic.services.config import critic_config_update
from critic.services.embedding import embedding_store_get, encoder_get
from critic.services.loading import critic_load
from critic.services.training import critic_train
from critic.tiers.fast import relation_index
from tests.critic.test_cross_encoder import _pairs, tiny_bert  # noqa: F401 - a fixture

HEAD = "PersonX finally meets PersonY"
VERB = "as a result, PersonX feels"


def test_a_draw_replaces_every_person_by_a_name_the_same_way_each_time():
    first, second = pair_texts(HEAD, VERB, "glad to know person Y and PersonZ's dog", draw=0)
    assert not PERSON.search(first) and not PERSON.search(second)
    x, y, z = draw_names(HEAD, 0)
    assert len({x, y, z}) == 3 and {x, y, z} <= set(NAMES)
    assert first == f"{x} finally meets {y}. as a result, {x} feels"
    assert second == f"glad to know {y} and {z}'s dog"
    # Deterministic: the same head and draw always give the same names ...
    assert pair_texts(HEAD, VERB, "glad", draw=0) == pair_texts(HEAD, VERB, "glad", draw=0)
    # ... and other draws (or another seed) give other names.
    assert len({draw_names(HEAD, d) for d in range(5)}) == 5
    assert draw_names(HEAD, 0, seed=1) != draw_names(HEAD, 0)
    # Without a draw the texts are as written; text without a person is left alone.
    assert pair_texts(HEAD, VERB, "glad") == (f"{HEAD}. {VERB}", "glad")
    assert swap_names("the personal touch", (x, y, z)) == "the personal touch"


def _vectors(n: int, dim: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    u = rng.standard_normal((n, dim)).astype(np.float32)
    v = rng.standard_normal((n, dim)).astype(np.float32)
    relation = rng.integers(0, 3, n)
    labels = ((u * v).sum(axis=1) > 0).astype(int)
    return u, v, relation, labels


def test_the_fast_head_learns_copies_as_one_label_and_scores_their_mean():
    u, v, relation, labels = _vectors(600)
    plain = train_fast_critic(u, v, relation, 3, labels)
    # Two identical copies of every label, each weighing a half: the same head, and
    # held-out folds that keep a label's copies together (else the copy in the training
    # folds would leak its label into the held-out score).
    doubled = train_fast_critic(
        np.concatenate([u, u]),
        np.concatenate([v, v]),
        np.concatenate([relation, relation]),
        3,
        labels,
        copies=2,
    )
    assert doubled.heldout_scores.shape == (600,)
    np.testing.assert_allclose(doubled.heldout_scores, plain.heldout_scores, atol=2e-3)
    np.testing.assert_allclose(doubled.critic.model.coef_, plain.critic.model.coef_, atol=2e-3)
    with pytest.raises(ValueError, match="2 per label"):
        train_fast_critic(u, v, relation, 3, labels, copies=2)


def test_the_cross_encoder_trains_on_every_copy_and_scores_held_out_ones_as_their_mean(
    tiny_bert,  # noqa: F811
    tmp_path,
):
    first, second, labels = _pairs(60)
    swapped = [
        (swap_names(f, draw_names(f, d)), swap_names(s, draw_names(f, d)))
        for d in range(2)
        for f, s in zip(first, second, strict=True)
    ]
    result = train_cross_encoder(
        [f for f, _ in swapped],
        [s for _, s in swapped],
        labels,
        base_model=tiny_bert,
        output_dir=tmp_path,
        epochs=2,
        learning_rate=1e-3,
        batch_size=16,
        copies=2,
    )
    # Two copies of 48 training labels, at 2 / 2 epochs: 6 steps of 16.
    assert result.steps == 6
    held = result.heldout_index
    assert len(held) == 12
    scorer = CrossEncoderScorer(result.model_dir)
    per_draw = [
        scorer.score([swapped[d * 60 + i][0] for i in held], [swapped[d * 60 + i][1] for i in held])
        for d in range(2)
    ]
    assert not np.array_equal(per_draw[0], per_draw[1])
    np.testing.assert_allclose(result.heldout_scores, np.mean(per_draw, axis=0), atol=1e-5)


def _draw_scores_fast(version, chunk, verbalizations, draws):
    loaded = critic_load(version)
    encoder = encoder_get(version.encoder)
    store = embedding_store_get(encoder)
    scores = []
    for draw in draws:
        found = chunk_embeddings(encoder, store, chunk, verbalizations, draw=draw)
        scores.append(
            loaded.critic.predict_indexed(
                found.firsts,
                found.first_of_row,
                found.seconds,
                found.second_of_row,
                relation_index(chunk.relation_ids, loaded.relations),
            )
        )
    return loaded, scores


@pytest.mark.one_leg
@pytest.mark.django_db
def test_a_fast_version_with_the_name_swap_learns_and_scores_over_the_draws(labelled_corpus):
    critic_config_update(corpus=labelled_corpus, name_swap=True, name_draws=3)
    version = critic_train(corpus=labelled_corpus, queue_rescore=False)
    labels = corpus_labels(corpus_id=labelled_corpus.pk).learning
    chunk = triples_by_id(labels.triple_ids[:60])
    verbalizations = relation_verbalizations()
    assert any("PersonX" in head for head in chunk.heads)

    # Training read every label in each draw: the swapped texts are in the cache, and
    # none of them names PersonX or PersonY.
    store = embedding_store_get(encoder_get(version.encoder))
    for draw in range(3):
        firsts, seconds = chunk_texts(chunk, verbalizations, draw=draw)
        assert not any(PERSON.search(text) for text in firsts + seconds)
        assert not store.missing(text_keys(firsts + seconds)).any()

    loaded, per_draw = _draw_scores_fast(version, chunk, verbalizations, [0, 1, 2])
    assert loaded.options.name_draws == 3
    scores = loaded.score(chunk, verbalizations)
    np.testing.assert_allclose(scores, np.mean(per_draw, axis=0), rtol=1e-5)
    assert not np.allclose(per_draw[0], per_draw[1])
    # The names as written score otherwise.
    _, [as_written] = _draw_scores_fast(version, chunk, verbalizations, [None])
    assert not np.allclose(scores, as_written)

    # The version keeps the draws it was trained with, whatever the setting says now.
    critic_config_update(corpus=labelled_corpus, name_swap=False)
    np.testing.assert_array_equal(critic_load(version).score(chunk, verbalizations), scores)


@pytest.mark.django_db
def test_a_cross_encoder_with_the_name_swap_scores_the_mean_over_the_draws(
    labelled_corpus,
    tiny_bert,  # noqa: F811
):
    critic_config_update(
        corpus=labelled_corpus,
        tier=CriticConfig.Tier.CROSS_ENCODER,
        encoder=tiny_bert,
        name_swap=True,
        name_draws=2,
    )
    version = critic_train(corpus=labelled_corpus, queue_rescore=False)
    loaded = critic_load(version)
    assert loaded.options.name_draws == 2
    labels = corpus_labels(corpus_id=labelled_corpus.pk).learning
    chunk = triples_by_id(labels.triple_ids[:40])
    verbalizations = relation_verbalizations()
    scorer = CrossEncoderScorer(loaded.model_dir)
    per_draw = [scorer.score(*chunk_texts(chunk, verbalizations, draw=d)) for d in range(2)]
    np.testing.assert_allclose(
        loaded.score(chunk, verbalizations), np.mean(per_draw, axis=0), atol=1e-5
    )
    as_written = scorer.score(*chunk_texts(chunk, verbalizations))
    assert not np.allclose(loaded.score(chunk, verbalizations), as_written)


@pytest.mark.django_db
def test_unset_the_swap_is_each_tiers_default_and_a_setting_overrides_it(labelled_corpus):
    from critic.forms import CriticConfigForm
    from critic.services.training import learning_options

    config = critic_config_update(corpus=labelled_corpus, name_draws=4)
    assert config.name_swap is None  # a new corpus leaves it to the tier
    # On where it helped on the proxy task (the cross-encoder), off where it did not.
    assert learning_options(config, "fast").name_draws == 0
    assert learning_options(config, "cross-encoder").name_draws == 4
    assert learning_options(config, "stacked").name_draws == 0
    for setting, drawn in ((True, 4), (False, 0)):
        config = critic_config_update(corpus=labelled_corpus, name_swap=setting)
        assert learning_options(config, "fast").name_draws == drawn
        assert learning_options(config, "cross-encoder").name_draws == drawn

    # The settings form offers the three states and keeps "unset" apart from "off".
    form = CriticConfigForm(instance=config)
    assert form.initial["name_swap"] == "off" and "each tier&#x27;s default" in str(form)
    data = {**form.initial, "name_swap": "", "tier": "fast", "label_weighting": "soft"}
    bound = CriticConfigForm(data=data, instance=config)
    assert bound.is_valid(), bound.errors
    assert bound.cleaned_data["name_swap"] is None


@pytest.mark.django_db
def test_a_stacked_version_trains_each_member_with_its_own_default(
    labelled_corpus,
    tiny_bert,  # noqa: F811 - the fixture
    monkeypatch,
):
    from critic.tiers.cross_encoder import CrossEncoderTier
    from critic.tiers.fast import FastTier

    critic_config_update(
        corpus=labelled_corpus, tier=CriticConfig.Tier.STACKED, encoder=tiny_bert, name_draws=2
    )
    learned = {}
    for tier_class in (FastTier, CrossEncoderTier):
        original = tier_class.train

        def spy(self, *, data, encoder, folder, progress=None, _original=original):
            learned[self.name] = data.options.name_draws
            return _original(self, data=data, encoder=encoder, folder=folder, progress=progress)

        monkeypatch.setattr(tier_class, "train", spy)
    version = critic_train(corpus=labelled_corpus, queue_rescore=False)
    # Unset, the swap is on for the cross-encoder member and off for the fast one.
    assert learned == {"fast": 0, "cross-encoder": 2}
    loaded = critic_load(version)
    if loaded.cross is not None:
        assert loaded.cross.options.name_draws == 2
    if loaded.fast is not None:
        assert loaded.fast.options.name_draws == 0
