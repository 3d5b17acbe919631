"""Two imports into a new corpus at once (issue 15, item 5): each summary reports what
that import added, read under the lock the imports take turns with (PostgreSQL's
advisory lock, SQLite's write lock)."""

import threading
import time

from django.db import connection, connections

from corpora.models import Corpus, Triple
from corpora.services import corpus_import

SAME_TRIPLE = "PersonX eats\txNeed\ta fork\n"


def _waiting_for_an_advisory_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        return cursor.fetchone()[0] > 0


def test_two_imports_of_one_triple_into_a_new_corpus_report_one_import_between_them(
    transactional_db, tmp_path
):
    """The second import starts while the first is loading. On PostgreSQL it waits for
    the first's turn and then finds the triple there; on SQLite it finishes first, while
    the first is still reading. Either way one import added the triple and the other
    found it: "imported 1" and "imported 0", never 1 and 1."""
    first_file = tmp_path / "first.tsv"
    second_file = tmp_path / "second.tsv"
    first_file.write_text(SAME_TRIPLE)
    second_file.write_text(SAME_TRIPLE)
    summaries, errors = {}, []

    def second_import():
        try:
            summaries["second"] = corpus_import(path=second_file, corpus_name="shared")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    second = threading.Thread(target=second_import)

    def progress(*args, **kwargs):
        if second.is_alive() or second.ident is not None:
            return
        second.start()
        deadline = time.monotonic() + 60
        if connection.vendor == "postgresql":
            while not _waiting_for_an_advisory_lock():  # the second waits for our turn
                assert time.monotonic() < deadline, "the second import never waited"
                time.sleep(0.02)
        else:
            second.join(timeout=60)  # nothing holds SQLite's write lock while we read

    summaries["first"] = corpus_import(path=first_file, corpus_name="shared", progress=progress)
    second.join(timeout=60)
    assert errors == []
    got = sorted((s.imported, s.duplicates) for s in (summaries["first"], summaries["second"]))
    assert got == [(0, 1), (1, 0)]
    corpus = Corpus.objects.get(name="shared")
    assert corpus.triple_count == 1
    assert Triple.objects.get(corpus=corpus).occurrences == 2
