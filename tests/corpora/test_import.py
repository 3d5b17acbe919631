import gzip

import orjson
import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from corpora.exporting import ExportFilter
from corpora.importing import CorpusImportError
from corpora.models import Corpus, Event, Relation, Triple
from corpora.scores import score_set_write
from corpora.services import corpus_export, corpus_import

pytestmark = pytest.mark.django_db


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


def tails(corpus_name: str) -> list[str]:
    return list(
        Triple.objects.filter(corpus__name=corpus_name)
        .order_by("id")
        .values_list("tail", flat=True)
    )


def test_atomic_tsv_imports_triples_and_creates_events(tmp_path):
    path = write(
        tmp_path / "a.tsv",
        "PersonX goes fishing\txNeed\ta fishing rod\n"
        "PersonX goes fishing\txIntent\tto relax\n"
        "PersonX bakes bread\txAttr\tskilled\n",
    )
    summary = corpus_import(path=path, corpus_name="demo")
    assert (summary.imported, summary.duplicates, summary.rejected) == (3, 0, 0)
    assert summary.format == "atomic-tsv"
    corpus = Corpus.objects.get(name="demo")
    assert corpus.triple_count == 3
    assert corpus.stats["by_relation"] == {
        "xNeed": {"train": 1},
        "xIntent": {"train": 1},
        "xAttr": {"train": 1},
    }
    assert set(Event.objects.values_list("text", flat=True)) == {
        "PersonX goes fishing",
        "PersonX bakes bread",
    }
    triple = Triple.objects.get(tail="a fishing rod")
    assert triple.head.text == "PersonX goes fishing"
    assert triple.relation.name == "xNeed"
    assert triple.origin == "import"


def test_duplicates_are_stored_once_and_counted(tmp_path):
    path = write(
        tmp_path / "dup.tsv",
        "PersonX runs\txNeed\tshoes\n"
        "PersonX runs\txNeed\tShoes.\n"
        "PersonX  runs\txNeed\t  shoes \n"
        "PersonX runs\txWant\tshoes\n",
    )
    summary = corpus_import(path=path, corpus_name="c")
    assert (summary.imported, summary.duplicates) == (2, 2)
    need = Triple.objects.get(relation__name="xNeed")
    assert need.tail == "shoes"  # the first spelling is kept
    assert need.occurrences == 3
    again = corpus_import(path=path, corpus_name="c")
    assert (again.imported, again.duplicates) == (0, 4)
    need.refresh_from_db()
    assert need.occurrences == 6
    assert Corpus.objects.get(name="c").occurrence_count == 8


def test_same_triple_in_two_corpora_is_two_rows_with_one_event(tmp_path):
    path = write(tmp_path / "x.tsv", "PersonX sings\txReact\thappy\n")
    corpus_import(path=path, corpus_name="one")
    corpus_import(path=path, corpus_name="two")
    assert Triple.objects.count() == 2
    assert Event.objects.filter(text="PersonX sings").count() == 1


def test_skd_jsonl_keeps_every_field_and_exports_back_intact(tmp_path):
    records = [
        {
            "head": "PersonX goes fishing",
            "relation": "xNeed",
            "tail": "a rod",
            "split": "train",
            "p_valid_model": 0.91,
            "rec_0.5": True,
            "rec_0.9": False,
            "valid": 2,
        },
        {
            "head": "PersonX goes fishing",
            "relation": "xWant",
            "tail": "to fly",
            "split": "test",
            "p_valid_model": 0.12,
            "rec_0.5": False,
            "rec_0.9": False,
            "valid": -1,
        },
    ]
    path = write(tmp_path / "skd.jsonl", "".join(orjson.dumps(r).decode() + "\n" for r in records))
    summary = corpus_import(path=path, corpus_name="skd")
    assert summary.format == "skd"
    out = tmp_path / "out.jsonl"
    corpus_export(corpus=Corpus.objects.get(name="skd"), fmt="jsonl", out_path=out)
    exported = [orjson.loads(line) for line in out.read_text().splitlines()]
    assert exported == records
    assert [list(r) for r in exported] == [list(r) for r in records]  # field order too


def test_skd_rejects_values_outside_the_scale(tmp_path):
    path = write(
        tmp_path / "bad.jsonl",
        '{"head": "PersonX eats", "relation": "xNeed", "tail": "food", "valid": 3}\n',
    )
    with pytest.raises(CorpusImportError) as err:
        corpus_import(path=path, corpus_name="bad", fmt="skd")
    assert "bad.jsonl, line 1, field 'valid'" in str(err.value)


def test_comet_generations_give_one_triple_per_generation(tmp_path):
    path = write(
        tmp_path / "gen.jsonl",
        orjson.dumps(
            {
                "head": "PersonX calls PersonY",
                "relation": "xNeed",
                "generations": ["a phone", "to dial", "a phone"],
                "greedy": "a phone",
            }
        ).decode()
        + "\n",
    )
    summary = corpus_import(path=path, corpus_name="comet")
    assert summary.format == "comet"
    assert (summary.imported, summary.duplicates) == (2, 1)
    assert tails("comet") == ["a phone", "to dial"]
    first = Triple.objects.get(tail="a phone")
    assert first.source_fields_dict == {"rank": 1, "greedy": True}


def test_csv_with_header_and_extra_columns(tmp_path):
    path = write(
        tmp_path / "t.csv",
        "Head,Relation,Tail,split,source\n"
        '"PersonX says ""hi""",xEffect,"gets a reply, maybe",val,teacher-1\n',
    )
    corpus_import(path=path, corpus_name="csv")
    triple = Triple.objects.get()
    assert triple.head.text == 'PersonX says "hi"'
    assert triple.tail == "gets a reply, maybe"
    assert triple.split == "val"
    assert triple.source_fields_dict == {"source": "teacher-1"}


def test_csv_without_required_columns_names_them(tmp_path):
    path = write(tmp_path / "t.csv", "head,rel,tail\nPersonX,xNeed,x\n")
    with pytest.raises(CorpusImportError, match=r"t.csv: line 1: .*missing relation"):
        corpus_import(path=path, corpus_name="csv")


def test_gzip_input(tmp_path):
    path = tmp_path / "a.tsv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("PersonX swims\txNeed\tto know how to swim\n")
    summary = corpus_import(path=path, corpus_name="gz")
    assert summary.format == "atomic-tsv"
    assert tails("gz") == ["to know how to swim"]


@pytest.mark.parametrize(
    ("content", "where"),
    [
        ("PersonX swims\txNeed\n", "line 2, field '(line)': expected 3 tab-separated fields"),
        ("PersonX swims\txFly\tto fly\n", "line 2, field 'relation': unknown relation 'xFly'"),
        ("PersonX swims\txNeed\t   \n", "line 2, field 'tail': empty"),
        ("PersonX swims\txNeed\t" + "x" * 501 + "\n", "line 2, field 'tail': longer than 500"),
        (b"PersonX swims\txNeed\t\xff\n", "line 2, field '(line)': not UTF-8"),
    ],
)
def test_a_bad_line_imports_nothing_and_is_named(tmp_path, content, where):
    good = "PersonX runs\txNeed\tshoes\n"
    path = tmp_path / "bad.tsv"
    if isinstance(content, bytes):
        path.write_bytes(good.encode() + content)
    else:
        write(path, good + content)
    with pytest.raises(CorpusImportError) as err:
        corpus_import(path=path, corpus_name="broken")
    assert f"bad.tsv, {where}" in str(err.value)
    assert "nothing was imported" in str(err.value)
    assert not Corpus.objects.filter(name="broken").exists()
    assert Triple.objects.count() == 0


def test_failed_import_into_existing_corpus_changes_nothing(tmp_path):
    corpus_import(
        path=write(tmp_path / "ok.tsv", "PersonX runs\txNeed\tshoes\n"), corpus_name="keep"
    )
    with pytest.raises(CorpusImportError):
        corpus_import(
            path=write(tmp_path / "bad.tsv", "PersonX runs\txNeed\tshoes\nbroken\n"),
            corpus_name="keep",
        )
    assert Triple.objects.get().occurrences == 1
    assert Corpus.objects.get(name="keep").triple_count == 1


def test_skip_invalid_imports_the_rest_and_writes_rejected_lines_beside_input(tmp_path):
    path = write(
        tmp_path / "mixed.jsonl",
        '{"head": "PersonX runs", "relation": "xNeed", "tail": "shoes"}\n'
        "not json\n"
        '{"head": "PersonX runs", "relation": "xNope", "tail": "legs"}\n'
        '{"head": "PersonX runs", "relation": "xWant", "tail": "rest"}\n',
    )
    summary = corpus_import(path=path, corpus_name="mixed", skip_invalid=True)
    assert (summary.imported, summary.rejected) == (2, 2)
    rejected = tmp_path / "mixed.jsonl.rejected.jsonl"
    assert summary.rejected_path == str(rejected)
    lines = [orjson.loads(line) for line in rejected.read_text().splitlines()]
    assert [(r["line"], r["field"]) for r in lines] == [(2, "(line)"), (3, "relation")]
    assert lines[0]["raw"] == "not json"
    assert "xNope" in lines[1]["error"]


def test_empty_file_is_an_error(tmp_path):
    with pytest.raises(CorpusImportError, match="e.tsv has only blank lines"):
        corpus_import(path=write(tmp_path / "e.tsv", "\n\n"), corpus_name="empty")


def test_unknown_format_is_an_error_naming_the_file(tmp_path):
    with pytest.raises(CorpusImportError, match="notes.txt: cannot tell the format"):
        corpus_import(path=write(tmp_path / "notes.txt", "hello\n"), corpus_name="x")


def test_relation_names_match_case_insensitively(tmp_path):
    corpus_import(
        path=write(tmp_path / "r.tsv", "PersonX naps\tisafter\tPersonX is tired\n"), corpus_name="r"
    )
    assert Triple.objects.get().relation == Relation.objects.get(name="isAfter")


def test_references_tsv_round_trips(tmp_path, shared_data):
    source = shared_data / "references.tsv"
    summary = corpus_import(path=source, corpus_name="refs")
    assert summary.rows_read == 12770
    assert summary.rejected == 0
    out = tmp_path / "refs.tsv"
    exported = corpus_export(corpus=Corpus.objects.get(name="refs"), fmt="tsv", out_path=out)
    assert exported.rows == summary.imported
    # Every exported line is a line of the source (spacing collapsed), in source order.
    source_lines = [
        "\t".join(" ".join(f.split()) for f in line.split("\t"))
        for line in source.read_text(encoding="utf-8").splitlines()
    ]
    out_lines = out.read_text(encoding="utf-8").splitlines()
    positions = {}
    for i, line in enumerate(source_lines):
        positions.setdefault(line, i)
    indexes = [positions[line] for line in out_lines]
    assert indexes == sorted(indexes)


def test_import_command_prints_summary_and_errors(tmp_path, capsys):
    good = write(tmp_path / "g.tsv", "PersonX runs\txNeed\tshoes\n")
    call_command("import_corpus", str(good), "--corpus", "cli", "--no-progress")
    assert "cli: imported 1, duplicates 0, rejected 0" in capsys.readouterr().out
    bad = write(tmp_path / "b.tsv", "PersonX runs\txNeed\n")
    with pytest.raises(CommandError, match="b.tsv, line 1"):
        call_command("import_corpus", str(bad), "--corpus", "cli", "--no-progress")


def test_export_filters(tmp_path):
    path = write(
        tmp_path / "f.jsonl",
        '{"head": "PersonX runs", "relation": "xNeed", "tail": "shoes", "split": "train"}\n'
        '{"head": "PersonX runs", "relation": "xWant", "tail": "rest", "split": "test"}\n'
        '{"head": "PersonX runs", "relation": "xNeed", "tail": "legs", "split": "test"}\n',
    )
    corpus_import(path=path, corpus_name="f")
    corpus = Corpus.objects.get(name="f")
    tails = dict(Triple.objects.values_list("tail", "pk"))
    score_set_write(corpus=corpus, scores={tails["legs"]: 0.9, tails["shoes"]: 0.2})

    def run(**kw):
        out = tmp_path / "o.jsonl"
        corpus_export(corpus=corpus, fmt="jsonl", out_path=out, flt=ExportFilter(**kw))
        return [orjson.loads(line)["tail"] for line in out.read_text().splitlines()]

    assert run(relations=("xNeed",)) == ["shoes", "legs"]
    assert run(split="test") == ["rest", "legs"]
    assert run(min_score=0.5) == ["legs"]
    assert run(relations=("xNeed",), split="train") == ["shoes"]


def test_csv_export_defuses_formulas(tmp_path):
    import csv

    path = write(
        tmp_path / "f.tsv", "=HYPERLINK(1)\txNeed\t+SUM(A1)\nPersonX @mentions\txNeed\t-1\n"
    )
    corpus_import(path=path, corpus_name="formulas")
    out = tmp_path / "out.csv"
    corpus_export(corpus=Corpus.objects.get(name="formulas"), fmt="csv", out_path=out)
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [(r["head"], r["tail"]) for r in rows] == [
        ("'=HYPERLINK(1)", "'+SUM(A1)"),
        ("PersonX @mentions", "'-1"),
    ]


def test_parquet_export_has_every_column(tmp_path):
    import pyarrow.parquet as pq

    path = write(
        tmp_path / "p.jsonl",
        '{"head": "PersonX runs", "relation": "xNeed", "tail": "shoes", "valid": 2}\n'
        '{"head": "PersonX runs", "relation": "xWant", "tail": "rest", "split": "test"}\n',
    )
    corpus_import(path=path, corpus_name="pq")
    out = tmp_path / "out.parquet"
    corpus_export(corpus=Corpus.objects.get(name="pq"), fmt="parquet", out_path=out)
    table = pq.read_table(out).to_pylist()
    assert table == [
        {
            "head": "PersonX runs",
            "relation": "xNeed",
            "tail": "shoes",
            "split": "train",
            "score": None,
            "source_fields": '{"valid":2}',
        },
        {
            "head": "PersonX runs",
            "relation": "xWant",
            "tail": "rest",
            "split": "test",
            "score": None,
            "source_fields": None,
        },
    ]


def test_export_to_stdout(tmp_path, capsysbinary):
    corpus_import(path=write(tmp_path / "s.tsv", "PersonX runs\txNeed\tshoes\n"), corpus_name="s")
    call_command("export_corpus", "s", "--format", "tsv", "--out", "-")
    assert capsysbinary.readouterr().out == b"PersonX runs\txNeed\tshoes\n"


def test_export_command_names_an_unknown_corpus():
    with pytest.raises(CommandError, match="No corpus named 'nope'"):
        call_command("export_corpus", "nope", "--out", "-")


def test_blocks_keep_line_numbers_and_order_across_block_boundaries(tmp_path, monkeypatch):
    from corpora.formats import blocks

    monkeypatch.setattr(blocks, "BLOCK_ROWS", 3)
    lines = [f"PersonX does {i}\txNeed\tthing {i % 4}\n" for i in range(10)]
    lines[7] = "PersonX does 7\txNope\tthing\n"
    path = write(tmp_path / "b.tsv", "".join(lines))
    summary = corpus_import(path=path, corpus_name="blocks", skip_invalid=True)
    assert (summary.imported, summary.rejected) == (9, 1)
    rejected = orjson.loads((tmp_path / "b.tsv.rejected.jsonl").read_text())
    assert (rejected["line"], rejected["field"]) == (8, "relation")
    assert tails("blocks") == [f"thing {i % 4}" for i in range(10) if i != 7]


def test_repeats_across_blocks_fold_into_the_first_row_in_file_order(tmp_path, monkeypatch):
    from corpora.formats import blocks

    monkeypatch.setattr(blocks, "BLOCK_ROWS", 2)
    rows = [
        ("PersonX eats", "xNeed", "a fork"),
        ("PersonX eats", "xNeed", "a plate"),
        ("PersonX runs", "xNeed", "shoes"),
        ("PersonX eats", "xNeed", "A fork."),  # a repeat of line 1, two blocks later
        ("PersonX runs", "xWant", "to rest"),
        ("PersonX runs", "xNeed", "shoes"),
    ]
    path = write(
        tmp_path / "r.jsonl",
        "".join(
            orjson.dumps({"head": h, "relation": r, "tail": t, "x": i}).decode() + "\n"
            for i, (h, r, t) in enumerate(rows)
        ),
    )
    summary = corpus_import(path=path, corpus_name="repeats")
    assert (summary.imported, summary.duplicates) == (4, 2)
    stored = list(
        Triple.objects.filter(corpus__name="repeats")
        .order_by("id")
        .values_list("tail", "occurrences", "source_fields")
    )
    assert stored == [
        ("a fork", 2, '{"x":0}'),
        ("a plate", 1, '{"x":1}'),
        ("shoes", 2, '{"x":2}'),
        ("to rest", 1, '{"x":4}'),
    ]


def test_maybe_seen_never_misses_a_row_it_was_given():
    import random

    from corpora.bulk.partition_fill import _MaybeSeen

    rng = random.Random(5)
    seen = _MaybeSeen()
    given = [
        ([rng.randrange(1, 10**7) for _ in range(20_000)], [rng.randrange(1, 30)] * 20_000)
        for _ in range(3)
    ]
    for head_ids, relation_ids in given:
        keys = [h * 7919 - 2**62 for h in head_ids]
        assert seen.check_and_add(head_ids, relation_ids, keys).mean() < 0.01
    for head_ids, relation_ids in given:
        keys = [h * 7919 - 2**62 for h in head_ids]
        assert seen.check_and_add(head_ids, relation_ids, keys).all()


@pytest.mark.parametrize("block_rows", [20_000, 1])
@pytest.mark.parametrize("in_c", [True, False])
def test_block_reader_and_row_reader_agree_on_every_kind_of_line(monkeypatch, block_rows, in_c):
    """The import's JSON-lines fast paths give what the careful row reader gives. In one
    block of mixed lines every line is looked at alone; in blocks of one line, each plain
    line is read in C (native/), or without it checked as a whole column
    (formats.jsonl._plain_block)."""
    import io

    from corpora.formats import RowError, blocks, jsonl, read_jsonl
    from corpora.formats.jsonl import _jsonl_blocks

    monkeypatch.setattr(blocks, "BLOCK_ROWS", block_rows)
    if not in_c:
        monkeypatch.setattr(jsonl, "jsonl_columns", None)
    lines = [
        {"head": "PersonX eats", "relation": "xNeed", "tail": "a fork", "valid": 2},
        {"head": "  PersonX   eats ", "relation": "xNeed", "tail": "a\tspoon", "x": [1]},
        {"head": "PersonX eats", "relation": " xNeed ", "tail": "food", "split": "Dev"},
        {"head": "PersonX eats", "relation": "xNeed", "tail": "   "},
        {"head": "PersonX eats", "relation": "xNeed", "tail": 5},
        {"head": "PersonX eats", "relation": "xNeed", "tail": "x" * 501},
        {"head": "PersonX eats", "relation": "xNeed", "tail": "ok", "valid": 3},
        {"head": "PersonX eats", "relation": "xNeed", "tail": "ok", "valid": True},
        {"head": "PersonX eats", "relation": "xNeed", "tail": "ok", "p_valid_model": 1.5},
        {"head": "PersonX eats", "relation": "xNeed", "tail": "ok", "split": "a b"},
        {"relation": "xNeed", "tail": "no head"},
        ["not", "an", "object"],
        {"head": "PersonX eats", "relation": "xNeed", "tail": "a\u00a0spoon"},
        {"head": "PersonX eats", "relation": "xNeed", "tail": "a spoon "},
        {"head": "PersonX eats\nlunch", "relation": "xNeed", "tail": "a spoon"},
        {"head": "PersonX eats", "relation": "xNeed", "tail": "a spoon", "split": None},
        {"head": "Personne mange", "relation": "xNeed", "tail": "un café", "p_valid_model": 0},
        {"head": "PersonX eats", "relation": "xNeed", "tail": "rice", "valid": None, "y": "z"},
        {"head": "PersonX naps", "relation": "xWant", "tail": "a bed"},
    ]
    data = b"".join(orjson.dumps(line) + b"\n" for line in lines) + b"\n{broken\n"
    rows = list(read_jsonl(io.BytesIO(data), skd=True))
    expected_rows = [
        (r.line, r.head, r.relation, r.tail, r.split, r.source_fields)
        for r in rows
        if not isinstance(r, RowError)
    ]
    expected_errors = [r for r in rows if isinstance(r, RowError)]
    got_rows, got_errors = [], []
    for block in _jsonl_blocks(io.BytesIO(data), skd=True):
        got_rows += zip(
            block.lines,
            block.heads,
            block.relations,
            block.tails,
            block.splits,
            block.fields,
            strict=True,
        )
        got_errors += block.errors
    assert got_rows == expected_rows
    assert [(e.line, e.field, e.message) for e in got_errors] == [
        (e.line, e.field, e.message) for e in expected_errors
    ]
    assert len(expected_rows) == 10 and len(expected_errors) == 10


def test_every_kind_of_whitespace_is_collapsed_so_such_tails_fold_together(tmp_path):
    tails_written = ["a fork", "a\u00a0fork", "a\rfork", "a\u2003 fork", "a fork\u3000"]
    path = write(
        tmp_path / "ws.jsonl",
        "".join(
            orjson.dumps({"head": "PersonX eats", "relation": "xNeed", "tail": t}).decode() + "\n"
            for t in tails_written
        ),
    )
    summary = corpus_import(path=path, corpus_name="spaces")
    assert (summary.imported, summary.duplicates) == (1, 4)
    assert list(
        Triple.objects.filter(corpus__name="spaces").values_list("tail", "occurrences")
    ) == [("a fork", 5)]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="COPY is PostgreSQL's")
def test_a_failing_copy_out_raises_and_leaves_the_connection_usable(tmp_path):
    """The export's COPY reader drives libpq itself: a server error is raised with the
    server's message, and an error on our side (a full disk) cancels the COPY; either
    way the connection serves the next query."""
    import io

    from django.db import DatabaseError, transaction

    from corpora.exporting import _copy_out

    with pytest.raises(DatabaseError, match="division by zero"), transaction.atomic():
        _copy_out("COPY (SELECT 1 / (g - 3) FROM generate_series(1, 5) g) TO STDOUT", io.BytesIO())

    class FullDisk(io.BytesIO):
        def write(self, data):
            if self.tell() > 1000:
                raise OSError("No space left on device")
            return super().write(data)

    with pytest.raises(OSError, match="No space"), transaction.atomic():
        _copy_out("COPY (SELECT g FROM generate_series(1, 2000000) g) TO STDOUT", FullDisk())
    with connection.cursor() as cursor:
        cursor.execute("SELECT 41 + 1")
        assert cursor.fetchone() == (42,)
    out = io.BytesIO()
    with transaction.atomic():
        assert _copy_out("COPY (SELECT g FROM generate_series(1, 3) g) TO STDOUT", out) == 3
    assert out.getvalue() == b"1\n2\n3\n"
