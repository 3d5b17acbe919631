"""The fast critic's head, on synthetic vectors (no encoder needed)."""

import numpy as np

from critic.ml.fast import build_features, train_fast_critic


def _vectors(n: int, dim: int = 16, seed: int = 0):
    rng = np.random.default_rng(seed)
    u = rng.standard_normal((n, dim)).astype(np.float32)
    v = rng.standard_normal((n, dim)).astype(np.float32)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    relation = rng.integers(0, 3, n)
    labels = ((u * v).sum(axis=1) + 0.2 * (relation == 1) > 0).astype(int)
    return u.astype(np.float16), v.astype(np.float16), relation, labels


def test_predict_matches_the_model_on_the_full_feature_matrix():
    u, v, relation, labels = _vectors(600)
    result = train_fast_critic(u, v, relation, 3, labels)
    fast = result.critic.predict(u, v, relation)
    reference = result.critic.model.predict_proba(build_features(u, v, relation, 3))[:, 1]
    np.testing.assert_allclose(fast, reference, atol=1e-5)


def test_learns_a_pair_rule_and_scores_held_out_folds_honestly():
    u, v, relation, labels = _vectors(2000, seed=1)
    result = train_fast_critic(u, v, relation, 3, labels)
    assert result.metrics["roc_auc"] > 0.9  # out-of-fold, never trained on
    assert len(result.heldout_scores) == len(labels)
    assert ((result.heldout_scores >= 0) & (result.heldout_scores <= 1)).all()
