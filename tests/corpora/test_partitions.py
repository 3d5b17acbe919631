"""PostgreSQL keeps each corpus's triples in a partition of its own: made with the corpus,
filled whole when an import finds the corpus empty, dropped with the corpus. These tests
check what a user would see (rows, order, counts, later imports) and that nothing is
left behind."""

import threading

import numpy as np
import orjson
import pytest
from django.db import connection, connections

from corpora.bulk import partition_fill
from corpora.importing import CorpusImportError, tail_key
from corpora.models import Corpus, Event, Relation, Triple
from corpora.services import corpus_delete, corpus_import

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="partitions exist on PostgreSQL only"
)


def partitions(corpus: Corpus) -> dict[str, bool]:
    """The corpus's partition and load tables, each with whether it is attached."""
    name = f"generation_triple_{corpus.pk}"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, i.inhrelid IS NOT NULL FROM pg_class c"
            " LEFT JOIN pg_inherits i ON i.inhrelid = c.oid"
            " WHERE (c.relname = %s OR c.relname LIKE %s) AND c.relkind = 'r'",
            [name, name + "\\_%"],
        )
        return dict(cursor.fetchall())


def partition_oid(corpus: Corpus) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::regclass::oid", [f"generation_triple_{corpus.pk}"])
        return cursor.fetchone()[0]


def jsonl(path, rows):
    path.write_text(
        "".join(
            orjson.dumps({"head": h, "relation": r, "tail": t, "n": i}).decode() + "\n"
            for i, (h, r, t) in enumerate(rows)
        )
    )
    return path


ROWS = [
    ("PersonX fishes", "xNeed", "a rod"),
    ("PersonX fishes", "xNeed", "bait"),
    ("PersonX swims", "xWant", "to rest"),
    ("PersonX fishes", "xNeed", "A rod."),  # repeats line 1, a block later
    ("PersonX swims", "xNeed", "a towel"),
    ("PersonX fishes", "xNeed", "bait"),  # repeats line 2
    ("PersonX swims", "xWant", "a nap"),
]


def test_a_corpus_has_a_partition_from_creation_to_deletion(db):
    corpus = Corpus.objects.create(name="own")
    name = f"generation_triple_{corpus.pk}"
    assert partitions(corpus) == {name: True}
    Triple.objects.create(
        corpus=corpus,
        head=Event.objects.create(text="PersonX fishes"),
        relation=Relation.objects.get(name="xNeed"),
        tail="a rod",
        tail_key=1,
    )
    corpus_delete(corpus=corpus)
    assert partitions(corpus) == {}
    other = Corpus.objects.create(name="deleted by the ORM")
    other.delete()
    assert partitions(other) == {}


def test_an_empty_corpus_is_filled_whole_in_file_order(transactional_db, tmp_path, monkeypatch):
    """Outside a transaction (a worker's import) the load table is committed, indexed on
    two connections and swapped in."""
    fill_empty_corpus(tmp_path, monkeypatch)


def test_an_empty_corpus_is_filled_whole_inside_a_transaction(db, tmp_path, monkeypatch):
    fill_empty_corpus(tmp_path, monkeypatch)


def fill_empty_corpus(tmp_path, monkeypatch):
    from corpora.formats import blocks

    monkeypatch.setattr(blocks, "BLOCK_ROWS", 2)
    summary = corpus_import(path=jsonl(tmp_path / "c.jsonl", ROWS), corpus_name="fish")
    assert (summary.imported, summary.duplicates) == (5, 2)
    corpus = Corpus.objects.get(name="fish")
    stored = list(
        Triple.objects.filter(corpus=corpus)
        .order_by("id")
        .values_list("tail", "occurrences", "source_fields")
    )
    assert stored == [
        ("a rod", 2, '{"n":0}'),
        ("bait", 2, '{"n":1}'),
        ("to rest", 1, '{"n":2}'),
        ("a towel", 1, '{"n":4}'),
        ("a nap", 1, '{"n":6}'),
    ]
    assert corpus.triple_count == 5
    assert partitions(corpus) == {f"generation_triple_{corpus.pk}": True}
    # The loaded table's two indexes became the parent's: ATTACH built no others.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.inhparent::regclass::text FROM pg_index x"
            " LEFT JOIN pg_inherits i ON i.inhrelid = x.indexrelid"
            " WHERE x.indrelid = %s::regclass ORDER BY 1",
            [f"generation_triple_{corpus.pk}"],
        )
        parents = [row[0] for row in cursor.fetchall()]
    assert parents == ["generation_triple_pkey", "triple_unique_in_corpus"]
    # The swapped-in partition carries the parent's keys: a second import merges.
    again = corpus_import(path=jsonl(tmp_path / "d.jsonl", ROWS[:3]), corpus_name="fish")
    assert (again.imported, again.duplicates) == (0, 3)
    occurrences = Triple.objects.filter(corpus=corpus).order_by("id")
    assert list(occurrences.values_list("occurrences", flat=True)) == [3, 3, 2, 1, 1]
    # New rows still take ids after the loaded ones.
    Triple.objects.create(
        corpus=corpus, head_id=occurrences[0].head_id, relation_id=1, tail="x", tail_key=7
    )
    assert Triple.objects.filter(corpus=corpus).order_by("-id").first().tail == "x"


def test_a_failed_import_leaves_the_empty_corpus_as_it_was(transactional_db, tmp_path):
    corpus = Corpus.objects.create(name="kept")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(jsonl(tmp_path / "ok.jsonl", ROWS).read_text() + "{not json\n")
    with pytest.raises(CorpusImportError):
        corpus_import(path=bad, corpus_name="kept")
    assert partitions(corpus) == {f"generation_triple_{corpus.pk}": True}
    summary = corpus_import(path=tmp_path / "ok.jsonl", corpus_name="kept")
    assert summary.imported == 5


def test_a_row_written_while_the_empty_partition_is_detached_is_kept(
    transactional_db, tmp_path, monkeypatch
):
    """Another writer's row that reaches the old partition just before it is detached is
    not lost: the swap is refused, the partition put back and the import merged instead."""
    corpus = Corpus.objects.create(name="busy")
    head = Event.objects.create(text="PersonX swims")
    real_detach = partition_fill.partition_detach
    calls = []

    def other_writer():
        Triple.objects.create(
            corpus_id=corpus.pk,
            head=head,
            relation=Relation.objects.get(name="xNeed"),
            tail="a towel",
            tail_key=tail_key("a towel"),
        )
        connections.close_all()

    def detach_after_a_write(parent, table):
        calls.append(table)
        if len(calls) == 1:
            writer = threading.Thread(target=other_writer)
            writer.start()
            writer.join(timeout=60)
        real_detach(parent, table)

    monkeypatch.setattr(partition_fill, "partition_detach", detach_after_a_write)
    summary = corpus_import(path=jsonl(tmp_path / "c.jsonl", ROWS), corpus_name="busy")
    assert summary.rows_read == 7
    stored = dict(Triple.objects.filter(corpus=corpus).values_list("tail", "occurrences"))
    assert stored == {"a rod": 2, "bait": 2, "to rest": 1, "a towel": 2, "a nap": 1}
    assert partitions(corpus) == {f"generation_triple_{corpus.pk}": True}


def test_text_that_copy_must_escape_arrives_unchanged(db, tmp_path):
    path = tmp_path / "escapes.jsonl"
    rows = [
        {"head": "PersonX types \\n", "relation": "xNeed", "tail": "a back\\slash"},
        {"head": "PersonX quotes", "relation": "xNeed", "tail": 'a "quote"', "note": "a\nb\tc\\"},
    ]
    path.write_text("".join(orjson.dumps(row).decode() + "\n" for row in rows))
    corpus_import(path=path, corpus_name="escapes")
    stored = Triple.objects.filter(corpus__name="escapes").order_by("id")
    assert [(t.head.text, t.tail, t.source_fields_dict) for t in stored] == [
        ("PersonX types \\n", "a back\\slash", {}),
        ("PersonX quotes", 'a "quote"', {"note": "a\nb\tc\\"}),
    ]


def test_an_import_does_not_wait_long_behind_a_reader_to_swap(
    transactional_db, tmp_path, monkeypatch
):
    """Swapping out an existing corpus's empty partition needs the triple table to itself
    for a moment. Behind a long reader the import gives up waiting and merges its rows
    into the partition instead, which readers do not block."""
    corpus = Corpus.objects.create(name="read meanwhile")
    partition_before = partition_oid(corpus)
    monkeypatch.setattr(partition_fill, "SWAP_LOCK_TIMEOUT", "200ms")
    reading, done = threading.Event(), threading.Event()

    def long_reader():
        from django.db import transaction

        with transaction.atomic():
            Triple.objects.filter(corpus_id=corpus.pk).count()
            reading.set()
            done.wait(timeout=60)
        connections.close_all()

    reader = threading.Thread(target=long_reader)
    reader.start()
    reading.wait(timeout=30)
    try:
        summary = corpus_import(path=jsonl(tmp_path / "c.jsonl", ROWS), corpus_name=corpus.name)
    finally:
        done.set()
        reader.join(timeout=60)
    assert (summary.imported, summary.duplicates) == (5, 2)
    assert partition_oid(corpus) == partition_before  # merged into, not swapped


def test_ids_reserved_ahead_are_never_handed_out_again(transactional_db, monkeypatch):
    """An import into an empty corpus takes its ids in ranges; other sessions' nextval()
    carries on past each range, whether the sequence was used before or not."""
    monkeypatch.setattr(partition_fill._ReservedIds, "RANGE", 5)
    other = connections.create_connection("default")
    try:
        with connection.cursor() as cursor:
            cursor.execute("DROP SEQUENCE IF EXISTS skd_test_ids")
            cursor.execute("CREATE SEQUENCE skd_test_ids")
        ids = partition_fill._ReservedIds("skd_test_ids")
        taken = ids.take(3) + ids.take(1)
        with other.cursor() as cursor:
            cursor.execute("SELECT nextval('skd_test_ids')")
            elsewhere = cursor.fetchone()[0]
        taken += ids.take(1) + ids.take(7)
        assert taken[:4] == [1, 2, 3, 4]
        assert elsewhere == 6
        assert taken[4:] == [5, *range(7, 14)]
        with other.cursor() as cursor:
            cursor.execute("SELECT nextval('skd_test_ids')")
            assert cursor.fetchone()[0] == 14
    finally:
        other.close()
        with connection.cursor() as cursor:
            cursor.execute("DROP SEQUENCE IF EXISTS skd_test_ids")


@pytest.mark.parametrize("all_held", [False, True])
@pytest.mark.parametrize("in_c", [True, False])
def test_counts_taken_while_loading_match_a_recount(
    transactional_db, tmp_path, monkeypatch, all_held, in_c
):
    """Repeats across blocks (held back, then merged) and within a block, under other
    splits than their first row's: the counts by relation and split that the import
    stores are those a full recount gives. With every row held (as a Bloom filter's
    false alarms would be), the rows still arrive in file order. Without the native
    module, Python does the same."""
    from corpora.formats import blocks, jsonl
    from corpora.importing import staging
    from corpora.services import corpus_refresh_counts

    monkeypatch.setattr(blocks, "BLOCK_ROWS", 3)
    if not in_c:
        monkeypatch.setattr(jsonl, "jsonl_columns", None)
        monkeypatch.setattr(staging, "native_tail_keys", None)
        for name in ("bloom_check_and_add", "copy_binary", "count_pairs"):
            monkeypatch.setattr(partition_fill, name, None)
    if all_held:
        monkeypatch.setattr(
            partition_fill._MaybeSeen,
            "check_and_add",
            lambda self, heads, *_: np.ones(len(heads), bool),
        )
    rows = [
        ("PersonX fishes", "xNeed", "a rod", "train"),
        ("PersonX fishes", "xNeed", "bait", "dev"),
        ("PersonX fishes", "xNeed", "A rod", "dev"),  # within the block, other split
        ("PersonX swims", "xWant", "to rest", "test"),
        ("PersonX fishes", "xNeed", "a rod.", "test"),  # a block later, other split
        ("PersonX swims", "xWant", "to rest", "test"),
        ("PersonX swims", "xNeed", "a towel", "dev"),
        ("PersonX fishes", "xNeed", "bait", "train"),
    ]
    path = tmp_path / "splits.jsonl"
    path.write_text(
        "".join(
            orjson.dumps({"head": h, "relation": r, "tail": t, "split": s}).decode() + "\n"
            for h, r, t, s in rows
        )
    )
    summary = corpus_import(path=path, corpus_name="splits")
    assert (summary.imported, summary.duplicates) == (4, 4)
    corpus = Corpus.objects.get(name="splits")
    assert list(
        Triple.objects.filter(corpus=corpus)
        .order_by("id")
        .values_list("tail", "split", "occurrences")
    ) == [("a rod", "train", 3), ("bait", "dev", 2), ("to rest", "test", 2), ("a towel", "dev", 1)]
    loaded = (corpus.triple_count, corpus.occurrence_count, corpus.stats)
    corpus_refresh_counts(corpus=corpus)
    assert loaded == (4, 8, corpus.stats)
    assert corpus.stats["by_split"] == {"train": 1, "dev": 2, "test": 1}
