"""Score sets: a corpus's critic scores are replaced whole, never mixed, and leave nothing
behind when replaced, refused or deleted."""

import numpy as np
import pytest
from django.db import connection

from corpora.models import Corpus, ScoreSet, Triple, TripleScore
from corpora.scores import ScoreSetWriter, score_set_write
from corpora.services import corpus_delete
from tests.factories import CorpusFactory, TripleFactory


def scores_in_force(corpus: Corpus) -> dict[str, float | None]:
    triples = Triple.objects.filter(corpus=corpus).with_score(corpus)
    return dict(triples.values_list("tail", "score"))


def tables_of(*score_sets: ScoreSet) -> set[int]:
    """Which of these sets still have a table of their own (PostgreSQL's partitions)."""
    if connection.vendor != "postgresql":
        return set()
    names = {f"generation_triplescore_{s.pk}": s.pk for s in score_sets}
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname FROM pg_class WHERE relname = ANY(%s)", [list(names)])
        return {names[name] for (name,) in cursor.fetchall()}


def own_table(score_set: ScoreSet) -> set[int]:
    return {score_set.pk} if connection.vendor == "postgresql" else set()


@pytest.fixture
def corpus(db):
    corpus = CorpusFactory()
    for tail in ("a rod", "bait", "a boat"):
        TripleFactory(corpus=corpus, tail=tail)
    return corpus


def ids(corpus: Corpus) -> dict[str, int]:
    return dict(corpus.triple_set.values_list("tail", "pk"))


def test_a_new_set_replaces_the_old_one_whole(corpus):
    tails = ids(corpus)
    assert scores_in_force(corpus) == {"a rod": None, "bait": None, "a boat": None}
    first = score_set_write(corpus=corpus, scores={tails["a rod"]: 0.1, tails["bait"]: 0.2})
    second = score_set_write(corpus=corpus, scores={tails["a rod"]: 0.9})
    # "bait" had a score only in the replaced set: it is unscored now, not left stale.
    assert scores_in_force(corpus) == {"a rod": 0.9, "bait": None, "a boat": None}
    corpus.refresh_from_db()
    assert list(ScoreSet.objects.filter(corpus=corpus)) == [corpus.score_set]
    assert set(TripleScore.objects.values_list("score_set", flat=True)) == {second.pk}
    assert tables_of(first, second) == own_table(second)


def test_a_set_refused_or_discarded_changes_nothing(corpus):
    tails = ids(corpus)
    in_force = score_set_write(corpus=corpus, scores={tails["bait"]: 0.5})
    refused = ScoreSetWriter(corpus.pk)
    refused.write(np.array([tails["bait"]]), np.array([0.7]))
    assert refused.commit(before_swap=lambda: False) is None
    discarded = ScoreSetWriter(corpus.pk)
    discarded.write(np.array([tails["bait"]]), np.array([0.8]))
    discarded.discard()
    assert scores_in_force(corpus)["bait"] == 0.5
    assert ScoreSet.objects.filter(corpus=corpus).count() == 1
    assert TripleScore.objects.count() == 1
    assert tables_of(in_force, refused.score_set, discarded.score_set) == own_table(in_force)


def test_deleting_a_corpus_deletes_its_score_sets(corpus):
    other = CorpusFactory()
    kept = TripleFactory(corpus=other, tail="kept")
    others = score_set_write(corpus=other, scores={kept.pk: 0.4})
    deleted = score_set_write(corpus=corpus, scores={pk: 0.3 for pk in ids(corpus).values()})
    corpus_delete(corpus=corpus)
    assert not ScoreSet.objects.filter(corpus_id=corpus.pk).exists()
    assert list(TripleScore.objects.values_list("score", flat=True)) == [0.4]
    assert scores_in_force(other) == {"kept": 0.4}
    assert tables_of(others, deleted) == own_table(others)


def test_sets_swap_outside_a_transaction(transactional_db):
    """As a worker writes them: on PostgreSQL the two indexes are built on two
    connections and the replaced partition is detached without blocking readers."""
    corpus = CorpusFactory()
    triples = [TripleFactory(corpus=corpus, tail=f"tail {i}") for i in range(50)]
    first = score_set_write(corpus=corpus, scores={t.pk: 0.25 for t in triples})
    writer = ScoreSetWriter(corpus.pk)
    for part in (triples[:20], triples[20:]):
        writer.write(np.array([t.pk for t in part]), np.array([0.75] * len(part)))
    assert writer.commit() is not None
    assert set(scores_in_force(corpus).values()) == {0.75}
    above = TripleScore.objects.filter(score_set=writer.score_set, score__gte=0.5).count()
    assert above == 50
    assert tables_of(first, writer.score_set) == own_table(writer.score_set)
