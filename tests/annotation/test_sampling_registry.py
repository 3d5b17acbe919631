"""Sampling strategies are registered by name: a campaign's `sampling` picks one, a new one
is a class and a registry line, and an unknown name is a refusal that names the known ones."""

import numpy as np
import pytest

from annotation.apis import refusal_response
from annotation.errors import (
    AnnotationError,
    AnnotatorPaused,
    AssignmentNotFound,
    CampaignClosed,
    LeaseRefused,
    NothingToUndo,
    SamplingError,
)
from annotation.models import Campaign
from annotation.sampling import STRATEGIES, Candidates, Strategy, choose, design_weights, strata
from core.errors import AppError


def candidates(n: int = 12, scored: bool = True) -> Candidates:
    scores = np.linspace(0.0, 1.0, n) if scored else np.full(n, np.nan)
    return Candidates(np.arange(100, 100 + n, dtype=np.int64), np.arange(n) % 3, scores)


def test_every_sampling_a_campaign_offers_has_a_strategy():
    assert set(STRATEGIES) == set(Campaign.Sampling.values)
    assert all(isinstance(s, Strategy) and STRATEGIES[s.name] is s for s in STRATEGIES.values())


@pytest.mark.parametrize("call", [choose, design_weights, strata])
def test_an_unknown_sampling_is_refused_naming_the_known_ones(call):
    arguments = {"candidates": candidates(), "sampling": "alphabetical"}
    if call is choose:
        arguments |= {"size": 3, "seed": 1}
    if call is design_weights:
        arguments["picked"] = np.arange(3)
    with pytest.raises(SamplingError) as refused:
        call(**arguments)
    message = str(refused.value)
    assert "'alphabetical'" in message
    assert all(name in message for name in Campaign.Sampling.values)
    assert isinstance(refused.value, AnnotationError) and isinstance(refused.value, AppError)
    assert not isinstance(refused.value, ValueError)


def test_an_unknown_sampling_is_refused_even_for_an_empty_corpus():
    with pytest.raises(SamplingError, match="known ones"):
        choose(candidates=candidates(0), size=3, sampling="alphabetical", seed=1)


class FirstOnes(Strategy):
    """The candidates in their own order: a strategy a test can predict."""

    name = "first_ones"

    def pick(self, rng, candidates, size):
        return np.arange(size)


class HighestScores(Strategy):
    name = "highest_scores"
    needs_scores = True

    def pick(self, rng, candidates, size):
        return np.argsort(-np.nan_to_num(candidates.scores, nan=-1.0), kind="stable")[:size]


def test_a_registered_strategy_is_chosen_by_name(monkeypatch):
    monkeypatch.setitem(STRATEGIES, FirstOnes.name, FirstOnes())
    found = candidates(12)
    picked = choose(candidates=found, size=4, sampling="first_ones", seed=7)
    assert picked.tolist() == [0, 1, 2, 3]
    # Not stratified: each pick stands for population / picks of the corpus.
    weights = design_weights(candidates=found, picked=picked, sampling="first_ones")
    assert weights.tolist() == [3.0] * 4
    assert strata(candidates=found, sampling="first_ones") is None


def test_a_strategy_that_needs_scores_is_refused_without_them(monkeypatch):
    monkeypatch.setitem(STRATEGIES, HighestScores.name, HighestScores())
    with pytest.raises(SamplingError, match="'highest_scores' sampling needs critic scores"):
        choose(candidates=candidates(scored=False), size=3, sampling="highest_scores", seed=1)
    picked = choose(candidates=candidates(), size=3, sampling="highest_scores", seed=1)
    assert picked.tolist() == [11, 10, 9]


def test_stratified_weights_are_population_over_picks_per_stratum():
    found = candidates(12)  # relations 0, 1, 2 four times each
    picked = choose(candidates=found, size=6, sampling="relation", seed=3)
    assert sorted((found.relation_ids[picked]).tolist()) == [0, 0, 1, 1, 2, 2]
    weights = design_weights(candidates=found, picked=picked, sampling="relation")
    assert weights.tolist() == [2.0] * 6
    uncertain = design_weights(candidates=found, picked=picked, sampling="uncertain")
    assert uncertain.tolist() == [1.0] * 6


@pytest.mark.parametrize(
    "refusal",
    [
        AnnotationError,
        CampaignClosed,
        AnnotatorPaused,
        LeaseRefused,
        NothingToUndo,
        AssignmentNotFound,
    ],
)
def test_each_refusal_carries_the_status_and_code_the_api_answers_with(refusal):
    response = refusal_response(refusal("no"))
    assert (response.status_code, response.data["code"]) == (refusal.status, refusal.code)
    assert response.data["detail"] == "no"
