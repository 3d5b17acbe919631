import threading

from django.db import connections

from corpora.models import Corpus, Event, Relation, Triple
from corpora.services import corpus_import


def test_concurrent_imports_all_land_without_lock_errors(transactional_db, tmp_path):
    """Four imports at once, sharing heads: SQLite writers queue (BEGIN IMMEDIATE plus a
    busy timeout) instead of failing; PostgreSQL merges them. Nothing is lost or doubled."""
    files = []
    for n in range(4):
        path = tmp_path / f"part{n}.tsv"
        path.write_text(
            "".join(f"PersonX shared head {i}\txNeed\ttail {n}-{i}\n" for i in range(300))
        )
        files.append(path)
    errors: list[BaseException] = []

    def run(path, name):
        try:
            corpus_import(path=path, corpus_name=name)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(path, f"c{n}")) for n, path in enumerate(files)]
    threads += [threading.Thread(target=run, args=(files[0], "same"))]
    threads += [threading.Thread(target=run, args=(files[0], "same"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert [Corpus.objects.get(name=f"c{n}").triple_count for n in range(4)] == [300] * 4
    assert Event.objects.filter(text__startswith="PersonX shared head").count() == 300
    same = Corpus.objects.get(name="same")
    assert same.triple_count == 300
    assert set(Triple.objects.filter(corpus=same).values_list("occurrences", flat=True)) == {2}


def test_a_row_written_by_another_writer_during_an_import_is_folded_not_lost(
    transactional_db, tmp_path, monkeypatch
):
    """An import into an empty corpus copies rows straight in; if another writer adds
    one of them meanwhile, the import starts over with the folding merge."""
    from corpora.bulk import make_loader
    from corpora.formats import blocks
    from corpora.importing import StageBlock, tail_key

    monkeypatch.setattr(blocks, "BLOCK_ROWS", 2)
    path = tmp_path / "late.tsv"
    path.write_text("".join(f"PersonX does {i}\txNeed\ttail {i}\n" for i in range(6)))
    corpus = Corpus.objects.create(name="shared")
    relation_id = Relation.objects.get(name="xNeed").pk

    def other_writer():
        from django.db import transaction

        with transaction.atomic():
            loader = make_loader(corpus_id=corpus.pk, origin="teacher", job_id=None)
            loader.open()
            loader.add(
                StageBlock(
                    range(1, 2),
                    ["PersonX does 5"],
                    [relation_id],
                    ["tail 5"],
                    [tail_key("tail 5")],
                    ["train"],
                    [""],
                    [1],
                )
            )
            loader.finish()
            loader.close()
        connections.close_all()

    calls = []

    def progress(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            writer = threading.Thread(target=other_writer)
            writer.start()
            writer.join(timeout=60)

    summary = corpus_import(path=path, corpus_name="shared", progress=progress)
    assert summary.rows_read == 6
    stored = dict(Triple.objects.filter(corpus=corpus).values_list("tail", "occurrences"))
    assert stored == {f"tail {i}": 2 if i == 5 else 1 for i in range(6)}
