"""Reading a corpus for the critic: every triple once, in id order, with its texts."""

import pytest

from critic.corpus_data import corpus_chunks, read_ahead
from tests.factories import CorpusFactory, EventFactory, TripleFactory


def test_chunks_give_every_triple_once_with_its_head_and_tail(db):
    corpus = CorpusFactory()
    heads = [EventFactory(text=f"PersonX does thing {i}") for i in range(3)]
    # A tail holding a newline (which imports never store, but the ORM can) makes the
    # fast path give way to reading row by row for that chunk.
    tails = ["to rest", "a line\nbreak", "to eat", "to go home", "to sleep"]
    made = [
        TripleFactory(corpus=corpus, head=heads[i % 3], tail=tail) for i, tail in enumerate(tails)
    ]
    TripleFactory(tail="of another corpus")
    chunks = list(corpus_chunks(corpus_id=corpus.pk, chunk_size=2))
    assert [len(c) for c in chunks] == [2, 2, 1]
    got = [
        (int(i), head, tail)
        for c in chunks
        for i, head, tail in zip(c.ids, c.heads, c.tails, strict=True)
    ]
    assert got == [(t.pk, t.head.text, t.tail) for t in made]
    relation_ids = [int(r) for c in chunks for r in c.relation_ids]
    assert relation_ids == [t.relation_id for t in made]
    assert list(corpus_chunks(corpus_id=corpus.pk, after=made[-1].pk)) == []


def test_read_ahead_hands_over_items_and_errors(transactional_db):
    """Outside a transaction on PostgreSQL the items come from a thread."""

    def items():
        yield 1
        yield 2
        raise ValueError("chunk 3 is broken")

    got = []
    with pytest.raises(ValueError, match="chunk 3 is broken"):
        for item in read_ahead(items()):
            got.append(item)
    assert got == [1, 2]
    # A reader that stops early leaves no thread waiting behind it.
    for item in read_ahead(iter(range(100))):
        if item == 3:
            break
    assert item == 3
