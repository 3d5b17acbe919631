import pytest

from corpora.importing import tail_key
from corpora.models import Corpus, Event, Relation, Triple
from corpora.scores import score_set_write
from tests.factories import UserFactory

RELATIONS = ("xNeed", "xIntent", "xWant", "oEffect")


def make_corpus(n: int, name: str = "teacher", relations=RELATIONS, scores=None) -> Corpus:
    """n triples spread over heads and relations, in one bulk insert."""
    corpus = Corpus.objects.create(name=name)
    rels = [Relation.objects.get(name=r) for r in relations]
    heads = Event.objects.bulk_create(
        [Event(text=f"PersonX {name} event {i}") for i in range(max(1, n // len(rels) + 1))]
    )
    triples = []
    for i in range(n):
        tail = f"tail {i} of {name}"
        triples.append(
            Triple(
                corpus=corpus,
                head=heads[i // len(rels)],
                relation=rels[i % len(rels)],
                tail=tail,
                tail_key=tail_key(tail),
            )
        )
    Triple.objects.bulk_create(triples, batch_size=1000)
    if scores is not None:
        score_set_write(
            corpus=corpus,
            scores={t.pk: s for t, s in zip(triples, scores, strict=True) if s is not None},
        )
    Corpus.objects.filter(pk=corpus.pk).update(triple_count=n)
    return corpus


@pytest.fixture
def corpus(db):
    return make_corpus(40)


@pytest.fixture
def annotators(db):
    return [UserFactory(role="annotator") for _ in range(5)]


def add_members(campaign, users=None) -> None:
    """Make `users` (default: every annotator-role user there is now) members of
    `campaign`: only members judge a campaign."""
    from django.contrib.auth import get_user_model

    from annotation.services.membership import member_add
    from core.roles import ANNOTATOR

    if users is None:
        users = get_user_model().objects.filter(groups__name=ANNOTATOR)
    for user in users:
        member_add(campaign=campaign, annotator=user)
