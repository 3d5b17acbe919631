"""Hostile and odd input, read by the import (issue 15, items 2, 3, 4 and 8, and ATOMIC's
"none" tails): every bad byte named with its line and field, every limit with its
setting, nothing kept of a failed import. On both databases (the NUL tests are what
PostgreSQL's COPY used to fail on)."""

import gzip
import io

import orjson
import pytest
from django.core.management import CommandError, call_command
from hypothesis import given, settings
from hypothesis import strategies as st

from corpora.importing import CorpusImportError
from corpora.models import Corpus, Triple
from corpora.services import corpus_import

pytestmark = pytest.mark.django_db

BOM = b"\xef\xbb\xbf"


def write(path, data: bytes, *, gz: bool = False):
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def row(head="PersonX eats", relation="xNeed", tail="a fork", **extra) -> bytes:
    return orjson.dumps({"head": head, "relation": relation, "tail": tail, **extra}) + b"\n"


def stored(corpus: str) -> list[tuple[str, str, int]]:
    return list(
        Triple.objects.filter(corpus__name=corpus)
        .order_by("id")
        .values_list("head__text", "tail", "occurrences")
    )


def rejected_lines(summary) -> list[dict]:
    with open(summary.rejected_path, "rb") as lines:
        return [orjson.loads(line) for line in lines]


# --- Long lines, sizes, blank lines (item 2) ---------------------------------------


def test_a_line_over_the_limit_is_an_error_naming_its_line(tmp_path, settings):
    settings.IMPORT_MAX_LINE_BYTES = 200
    path = write(tmp_path / "long.jsonl", row() + row(tail="x" * 300) + row(tail="a knife"))
    with pytest.raises(CorpusImportError) as failed:
        corpus_import(path=path, corpus_name="long")
    assert "long.jsonl, line 2, field '(line)'" in str(failed.value)
    assert "longer than the limit of 200 bytes (IMPORT_MAX_LINE_BYTES)" in str(failed.value)
    assert not Corpus.objects.filter(name="long").exists()


def test_skip_invalid_keeps_only_the_start_of_a_long_line_marked_truncated(tmp_path, settings):
    settings.IMPORT_MAX_LINE_BYTES = 5000
    huge = b'{"head": "PersonX is long", "relation": "xNeed", "tail": "' + b"y" * 100_000
    path = write(tmp_path / "huge.jsonl", row() + huge + b'"}\n' + row(tail="a knife"))
    summary = corpus_import(path=path, corpus_name="huge", skip_invalid=True)
    assert (summary.imported, summary.rejected) == (2, 1)
    [entry] = rejected_lines(summary)
    assert entry["line"] == 2 and entry["truncated"] is True
    assert entry["raw"].startswith('{"head": "PersonX is long"')
    assert len(entry["raw"]) == 1000
    assert "line of 100,060 bytes" in entry["error"]
    assert (tmp_path / "huge.jsonl.rejected.jsonl").stat().st_size < 2000


def test_a_rejected_line_under_the_limit_is_truncated_too(tmp_path):
    data = b"PersonX eats\txNope\t" + b"z" * 3000 + b"\nPersonX eats\txNeed\ta fork\n"
    path = write(tmp_path / "r.tsv", data)
    summary = corpus_import(path=path, corpus_name="r", skip_invalid=True)
    [entry] = rejected_lines(summary)
    assert entry["truncated"] is True and len(entry["raw"]) == 1000


@pytest.mark.parametrize("gz", [False, True])
def test_a_file_over_the_size_limit_is_refused_naming_file_and_limit(tmp_path, settings, gz):
    settings.IMPORT_MAX_BYTES = 10_000
    path = write(tmp_path / "big.jsonl", b"".join(row(tail=f"t{i}") for i in range(400)), gz=gz)
    with pytest.raises(CorpusImportError, match=r"big\.jsonl(\.gz)?: .*limit of 10,000") as err:
        corpus_import(path=path, corpus_name="big")
    assert "IMPORT_MAX_BYTES" in str(err.value)
    assert ("once decompressed" in str(err.value)) == gz
    assert not Corpus.objects.filter(name="big").exists()


def test_a_compression_bomb_is_refused_by_its_ratio(tmp_path, settings):
    """70 MB of zeros in 70 KB: past the 64 MB where the ratio is judged, 1000 to 1."""
    settings.IMPORT_MAX_RATIO = 100
    path = tmp_path / "zeros.jsonl.gz"
    with gzip.open(path, "wb") as out:
        out.write(row())
        for _ in range(70):
            out.write(b"\x00" * (1 << 20))
    with pytest.raises(CorpusImportError, match=r"zeros\.jsonl\.gz: decompresses to more than"):
        corpus_import(path=path, corpus_name="zeros", fmt="jsonl", skip_invalid=True)
    assert not (tmp_path / "zeros.jsonl.gz.rejected.jsonl").exists()


def test_blank_lines_are_skipped_with_their_line_numbers_kept(tmp_path):
    path = write(tmp_path / "b.jsonl", b"\n\n" + row() + b"  \n\r\n\n" + b"{bad\n" + b"\n")
    with pytest.raises(CorpusImportError, match=r"b\.jsonl, line 7, field '\(line\)'"):
        corpus_import(path=path, corpus_name="b")


def test_too_many_blank_lines_in_a_row_are_refused(tmp_path, settings):
    settings.IMPORT_MAX_BLANK_LINES = 1000
    path = write(tmp_path / "nl.jsonl", row() + b"\n" * 999 + row(tail="b") + b"\r\n" * 1001)
    with pytest.raises(CorpusImportError) as failed:
        corpus_import(path=path, corpus_name="nl")
    assert "more than 1,000 blank lines in a row from line 1,002" in str(failed.value)
    assert "IMPORT_MAX_BLANK_LINES" in str(failed.value)


def test_the_line_reader_reads_lines_across_chunks_and_skips_long_ones_unheld(monkeypatch):
    """Lines are found across chunk boundaries; a long line comes back as its start and
    length only, however it is split over chunks."""
    from corpora.formats import LineReader, LongLine, ReadLimits, reading

    monkeypatch.setattr(reading, "CHUNK_BYTES", 7)
    data = b"one\n" + b"L" * 50 + b"\ntwo\n\n\nthree\n" + b"M" * 30
    reader = LineReader(io.BytesIO(data), limits=ReadLimits(max_line_bytes=20))
    got = [
        (n, ("long", line.length, line.start[:3]) if type(line) is LongLine else line.rstrip())
        for n, line in reader.lines()
    ]
    assert got == [
        (1, b"one"),
        (2, ("long", 50, b"LLL")),
        (3, b"two"),
        (6, b"three"),
        (7, ("long", 30, b"MMM")),
    ]


@settings(max_examples=400, deadline=None)
@given(
    parts=st.lists(
        st.sampled_from([b"x", b"", b"", b"  ", b"\r", b"a,b" * 5, b"L" * 40, b"{}", b"\t\r"]),
        max_size=80,
    ),
    chunk=st.sampled_from([1, 3, 8, 64, 1 << 19]),
    keep_blank=st.booleans(),
    last_feed=st.booleans(),
)
def test_the_line_reader_numbers_lines_as_a_plain_split_does(parts, chunk, keep_blank, last_feed):
    """Whatever the chunks, blank runs and long lines: the lines and numbers of a plain
    split, blank ones left out unless kept, long ones as their length."""
    from corpora.formats import LineReader, LongLine, ReadLimits, reading

    data = b"\n".join(parts) + (b"\n" if last_feed and parts else b"")
    expected = []
    for number, line in enumerate(data.split(b"\n"), 1):
        if number == len(data.split(b"\n")) and line == b"":
            break  # after the last line feed
        if not line.strip() and not keep_blank:
            continue
        expected.append((number, ("long", len(line)) if len(line) > 30 else line))
    saved, reading.CHUNK_BYTES = reading.CHUNK_BYTES, chunk
    try:
        reader = LineReader(io.BytesIO(data), limits=ReadLimits(max_line_bytes=30))
        got = [
            (n, ("long", line.length) if type(line) is LongLine else line.removesuffix(b"\n"))
            for n, line in reader.lines(keep_blank=keep_blank)
        ]
    finally:
        reading.CHUNK_BYTES = saved
    assert got == expected


def test_a_failed_import_leaves_no_rejected_file(tmp_path):
    path = write(tmp_path / "bad.tsv", b"PersonX eats\txNope\ta fork\n")
    with pytest.raises(CorpusImportError, match="no valid triples"):
        corpus_import(path=path, corpus_name="bad", skip_invalid=True)
    assert not (tmp_path / "bad.tsv.rejected.jsonl").exists()


# --- Control characters (item 3) ---------------------------------------------------


@pytest.mark.parametrize(
    "content, line, field, char",
    [
        (b"PersonX eats\txNeed\ta\x00fork\n", 1, "tail", "U+0000"),
        (b"PersonX\x00 eats\txNeed\ta fork\n", 1, "head", "U+0000"),
        (b"PersonX eats\tx\x00Need\ta fork\n", 1, "relation", "U+0000"),
        (b"ok\txNeed\tfine\nPersonX eats\txNeed\ta\x1bfork\n", 2, "tail", "U+001B"),
        (b"PersonX eats\txNeed\ta\x7ffork\n", 1, "tail", "U+007F"),
        ("PersonX eats\txNeed\ta\u0085fork\n".encode(), 1, "tail", "U+0085"),
    ],
)
def test_control_characters_in_tsv_are_named_with_line_and_field(
    tmp_path, content, line, field, char
):
    path = write(tmp_path / "c.tsv", content)
    with pytest.raises(CorpusImportError) as failed:
        corpus_import(path=path, corpus_name="c")
    assert f"c.tsv, line {line}, field '{field}': holds the control character {char}" in str(
        failed.value
    )


@pytest.mark.parametrize(
    "line, field",
    [
        (row(tail="a\u0000fork"), "tail"),
        (row(head="Person\u0000X"), "head"),
        (row(split="tr\u0000ain"), "split"),
        (row(note="see\u0000here"), "note"),
        (row(meta={"who": ["ok", "b\u0000d"]}), "meta.who[1]"),
        (row(**{"odd\u0000key": 1}), "odd\u0000key"),
        (row(note="bell\u0007"), "note"),
        (row(note="c1\u009b"), "note"),
    ],
)
def test_control_characters_in_json_are_named_even_escaped_and_in_kept_fields(
    tmp_path, line, field
):
    path = write(tmp_path / "c.jsonl", row(tail="first") + line)
    with pytest.raises(CorpusImportError) as failed:
        corpus_import(path=path, corpus_name="c")
    assert f"c.jsonl, line 2, field '{field}': " in str(failed.value)
    assert "control character" in str(failed.value)


def test_nul_lines_are_skipped_so_the_valid_ones_load(tmp_path):
    """The case PostgreSQL's COPY failed on, line or field unknown, --skip-invalid or not."""
    data = (
        row(tail="a fork")
        + row(tail="a\u0000knife")
        + b'{"head": "PersonX eats", "relation": "xNeed", "tail": "raw \x00 nul"}\n'
        + row(tail="a spoon", note="\u0000")
        + row(tail="a plate", note="tab\tand\nnewline are fine")
    )
    summary = corpus_import(
        path=write(tmp_path / "nul.jsonl", data), corpus_name="nul", skip_invalid=True
    )
    assert (summary.imported, summary.rejected) == (2, 3)
    assert [t for _, t, _ in stored("nul")] == ["a fork", "a plate"]
    assert [(e["line"], e["field"]) for e in rejected_lines(summary)] == [
        (2, "tail"),
        (3, "(line)"),
        (4, "note"),
    ]
    fields = Triple.objects.get(corpus__name="nul", tail="a plate").source_fields_dict
    assert fields == {"note": "tab\tand\nnewline are fine"}


def test_tabs_and_line_breaks_in_texts_are_still_whitespace(tmp_path):
    path = write(tmp_path / "ws.jsonl", row(head="PersonX\teats", tail="a\r\nfork"))
    corpus_import(path=path, corpus_name="ws")
    assert stored("ws") == [("PersonX eats", "a fork", 1)]


def test_control_characters_in_csv_extra_columns_are_named(tmp_path):
    path = write(tmp_path / "c.csv", b"head,relation,tail,note\nPersonX eats,xNeed,a fork,\x01\n")
    with pytest.raises(CorpusImportError, match=r"c\.csv, line 2, field 'note': holds the cont"):
        corpus_import(path=path, corpus_name="c")


# --- Byte-order mark (item 4) ------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
def test_a_bom_does_not_stick_to_the_first_tsv_head(tmp_path, gz):
    data = BOM + b"PersonX eats\txNeed\ta fork\nPersonX eats\txNeed\ta fork\n"
    summary = corpus_import(path=write(tmp_path / "bom.tsv", data, gz=gz), corpus_name="bom")
    assert (summary.imported, summary.duplicates) == (1, 1)
    assert stored("bom") == [("PersonX eats", "a fork", 2)]


@pytest.mark.parametrize("gz", [False, True])
def test_a_bom_does_not_hide_a_csv_header(tmp_path, gz):
    data = BOM + b"head,relation,tail\nPersonX eats,xNeed,a fork\n"
    summary = corpus_import(path=write(tmp_path / "bom.csv", data, gz=gz), corpus_name="bom")
    assert summary.imported == 1


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("extra, fmt", [({}, "jsonl"), ({"valid": 2}, "skd")])
def test_a_bom_does_not_stop_json_lines_being_recognized(tmp_path, gz, extra, fmt):
    data = BOM + row(**extra) + row(tail="a knife", **extra)
    summary = corpus_import(path=write(tmp_path / "bom.jsonl", data, gz=gz), corpus_name="bom")
    assert (summary.format, summary.imported) == (fmt, 2)
    assert stored("bom")[0] == ("PersonX eats", "a fork", 1)


def test_a_utf16_file_is_named_as_such(tmp_path):
    path = write(tmp_path / "u16.tsv", "PersonX eats\txNeed\ta fork\n".encode("utf-16"))
    with pytest.raises(CorpusImportError, match="u16.tsv: this is UTF-16 text"):
        corpus_import(path=path, corpus_name="u16")


# --- Messages (item 8) -------------------------------------------------------------


def test_a_json_error_is_placed_within_our_line_not_orjsons(tmp_path):
    path = write(tmp_path / "j.jsonl", row() + row() + b'{"head": "a",}\n' + b'{"head":\n')
    with pytest.raises(CorpusImportError) as failed:
        corpus_import(path=path, corpus_name="j")
    message = str(failed.value)
    assert "line 3, field '(line)': not valid JSON: " in message
    assert "trailing comma is not allowed at character 13 of the line" in message
    assert "line 4, field '(line)': not valid JSON: " in message
    assert "the line ends before the JSON value does" in message
    assert "line 2 column" not in message and "line 1 column" not in message


def test_a_latin1_line_says_utf8_was_expected_and_where(tmp_path):
    path = write(tmp_path / "l.jsonl", row() + '{"head": "café"}\n'.encode("latin-1"))
    with pytest.raises(CorpusImportError) as failed:
        corpus_import(path=path, corpus_name="l")
    message = str(failed.value)
    assert "l.jsonl, line 2, field '(line)': not UTF-8 text: byte 0xE9 at byte offset 13" in message
    assert "the file must be UTF-8" in message
    assert "surrogates" not in message


@pytest.mark.parametrize("name, fmt", [("e.jsonl", "auto"), ("e.txt", "auto"), ("e.tsv", "auto")])
def test_an_empty_file_is_called_empty(tmp_path, name, fmt):
    path = write(tmp_path / name, b"")
    with pytest.raises(CorpusImportError, match=f"{name} is empty"):
        corpus_import(path=path, corpus_name="e", fmt=fmt)


def test_an_empty_file_of_a_given_format_is_called_empty(tmp_path):
    with pytest.raises(CorpusImportError, match="e.jsonl is empty"):
        corpus_import(path=write(tmp_path / "e.jsonl", b""), corpus_name="e", fmt="skd")


# --- ATOMIC's "none" tails ---------------------------------------------------------

ATOMIC = (
    b"PersonX eats\txNeed\tnone\n"
    b"PersonX eats\txNeed\ta fork\n"
    b"PersonX eats\txWant\tNone.\n"
    b"PersonX eats\txWant\tnone of it\n"
)


def test_none_tails_are_dropped_from_atomic_tsv_and_the_summary_says_so(tmp_path):
    summary = corpus_import(path=write(tmp_path / "a.tsv", ATOMIC), corpus_name="a")
    assert (summary.imported, summary.dropped_none, summary.rows_read) == (2, 2, 4)
    assert summary.duplicates == 0
    assert "dropped 2 'none' tails" in summary.line()
    assert [t for _, t, _ in stored("a")] == ["a fork", "none of it"]


def test_none_tails_can_be_kept(tmp_path):
    summary = corpus_import(
        path=write(tmp_path / "a.tsv", ATOMIC), corpus_name="a", drop_none=False
    )
    assert (summary.imported, summary.dropped_none) == (4, 0)


def test_none_tails_are_kept_from_json_lines_unless_asked(tmp_path):
    path = write(tmp_path / "n.jsonl", row(tail="none") + row(tail="a fork"))
    assert corpus_import(path=path, corpus_name="kept").imported == 2
    summary = corpus_import(path=path, corpus_name="dropped", drop_none=True)
    assert (summary.imported, summary.dropped_none) == (1, 1)


def test_a_file_of_none_tails_only_says_so(tmp_path):
    path = write(tmp_path / "n.tsv", b"PersonX eats\txNeed\tnone\n")
    with pytest.raises(CorpusImportError, match="no triples left once its 1 'none' tails"):
        corpus_import(path=path, corpus_name="n")


def test_the_command_line_drops_or_keeps_none_tails(tmp_path, capsys):
    path = write(tmp_path / "a.tsv", ATOMIC)
    call_command("import_corpus", str(path), "--corpus", "cli", "--no-progress")
    assert "dropped 2 'none' tails" in capsys.readouterr().out
    call_command("import_corpus", str(path), "--corpus", "cli2", "--keep-none", "--no-progress")
    assert Corpus.objects.get(name="cli2").triple_count == 4
    jsonl = write(tmp_path / "n.jsonl", row(tail="none") + row())
    call_command("import_corpus", str(jsonl), "--corpus", "cli3", "--drop-none", "--no-progress")
    assert Corpus.objects.get(name="cli3").triple_count == 1
    with pytest.raises(CommandError):
        call_command("import_corpus", str(path), "--corpus", "x", "--drop-none", "--keep-none")
