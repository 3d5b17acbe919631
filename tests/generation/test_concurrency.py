import threading

from django.db import connections

from generation.models import Corpus, Event, Triple
from generation.services import corpus_import


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
