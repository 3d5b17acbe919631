"""The import's C loops (native/skd_native.c) against the Python code they stand in for.

`make install` builds the module, so these tests import it outright: a build that
broke would otherwise leave the import silently on its slower Python path."""

from __future__ import annotations

import json
import random
import re
import struct
import sys

import numpy as np
import orjson
import pytest
import skd_native
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from corpora.bulk import partition_fill
from corpora.formats import Block
from corpora.formats.jsonl import _jsonl_row

PYTHON_WHITESPACE = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()]


def careful(line: bytes, skd: bool):
    """What the careful row reader makes of one line: the row's columns, or None."""
    row = _jsonl_row(1, line, skd)
    if row is None or not hasattr(row, "head"):
        return None
    return (row.head, row.relation, row.tail, row.split, row.source_fields)


def native(line: bytes, skd: bool):
    """What the C reader makes of one line: the row's columns, or None when it leaves
    the line to Python."""
    *columns, odd = skd_native.jsonl_columns([line], skd)
    return None if odd else tuple(column[0] for column in columns)


CONTROL_CHARACTERS = [
    "\x00",
    "\x01",
    "\x08",
    "\x0b",
    "\x1b",
    "\x1f",
    "\x7f",
    "\x80",
    "\x85",
    "\x9f",
]
text_alphabet = st.sampled_from(
    ["a", "b", "Z", "0", " ", "  ", ".", "é", "日", "\\", '"', "\t", "\n", "\r"]
    + CONTROL_CHARACTERS
    + PYTHON_WHITESPACE[:8]
    + ["\u2028", "\u3000", "\u180e", "\ufeff", "\U0001f600", "\xa0", "\xa9"]
)
messy_texts = st.lists(text_alphabet, max_size=12).map("".join) | st.sampled_from(
    ["x" * 500, "x" * 501, "é" * 500, "é" * 501]
)
clean_texts = st.lists(
    st.sampled_from(
        ["a", "PersonX", "eats", "é", "日本", "\U0001f600", "\xa1", "'", "/", "x" * 50]
    ),
    min_size=1,
    max_size=5,
).map(" ".join)
texts = st.one_of(clean_texts, clean_texts, messy_texts)


class Raw(str):
    """A number written into the line as it stands."""


numbers = (
    st.integers(min_value=-(10**17), max_value=10**17)
    | st.floats(0, 1).map(lambda f: round(f, 3))
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.decimals(allow_nan=False, allow_infinity=False).map(str).map(Raw)
    | st.sampled_from(["0.0", "-0.0", "1.0", "0.50", "1e-06", "0.00001", "-0", "1E5", "2.0"]).map(
        Raw
    )
)
literals = st.sampled_from([True, False, None])
nested = st.lists(st.integers(), max_size=2) | st.dictionaries(st.text(max_size=2), st.integers())
values = st.one_of(clean_texts, messy_texts, numbers, literals, literals, nested)
keys = st.sampled_from(
    ["head", "relation", "tail", "split", "valid", "p_valid_model", "rec_0.5", "x", "", "é"]
)


def as_line(members: list[tuple[str, object]], style: int) -> bytes:
    """JSON text for these members (repeats kept), in one of several spellings."""
    parts = []
    for key, value in members:
        text = value if isinstance(value, Raw) else json.dumps(value, ensure_ascii=style == 1)
        parts.append(json.dumps(key, ensure_ascii=style == 1) + (": " if style else ":") + text)
    line = "{" + (", " if style else ",").join(parts) + "}"
    return (line + ("\r\n" if style == 2 else "\n")).encode("utf-8", "surrogatepass")


@settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    head=st.tuples(st.just("head"), texts),
    relation=st.tuples(
        st.just("relation"), st.sampled_from(["xNeed", "xNeed", "xNeed", " xNeed", "x  Need", ""])
    ),
    tail=st.tuples(st.just("tail"), texts),
    extra=st.lists(st.tuples(keys, values), max_size=3),
    order=st.randoms(use_true_random=False),
    style=st.integers(0, 2),
    skd=st.booleans(),
)
@example(
    head=("head", "PersonX eats"),
    relation=("relation", "xNeed"),
    tail=("tail", "a fork"),
    extra=[("p_valid_model", "0.50")],
    order=random.Random(0),
    style=0,
    skd=True,
)
def test_a_line_read_in_c_reads_as_the_careful_reader_reads_it(
    head, relation, tail, extra, order, style, skd
):
    members = [head, relation, tail, *extra]
    order.shuffle(members)
    line = as_line(members, style)
    got = native(line, skd)
    if got is not None:
        assert got == careful(line, skd), line


@settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    head=clean_texts,
    tail=clean_texts,
    split=st.sampled_from([None, "train", "dev", "test_1"]),
    extra=st.dictionaries(
        st.sampled_from(["p_valid_model", "rec_0.5", "x", "", "é", "note"]),
        st.one_of(
            clean_texts, st.floats(0, 1).map(lambda f: round(f, 3)), st.integers(-99, 99), literals
        ),
        max_size=4,
    ),
    style=st.sampled_from([0, 2]),
)
def test_every_plain_line_is_read_in_c(head, tail, split, extra, style):
    """Lines as a clean release writes them are never handed back to Python."""
    members = [("head", head), ("relation", "xNeed"), ("tail", tail)]
    members += [("split", split)] if split else []
    line = as_line(members + list(extra.items()), style)
    got = native(line, skd=False)
    assert got is not None, line
    assert got == careful(line, skd=False)


@settings(max_examples=800, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    where=st.sampled_from(["head", "relation", "tail", "split", "note", "note.inner", "key"]),
    control=st.sampled_from(CONTROL_CHARACTERS),
    position=st.integers(0, 3),
    escaped=st.booleans(),
    skd=st.booleans(),
)
def test_a_control_character_anywhere_is_refused_with_its_field_and_never_read_in_c(
    where, control, position, escaped, skd
):
    """C0 (but tab and line breaks), DEL and C1, raw or escaped as \\u00XX, in the core
    fields or in any field kept as source_fields: the careful reader names the field,
    and the C reader leaves the line to it."""
    text = "abc"[:position] + control + "abc"[position:]
    obj = {"head": "PersonX eats", "relation": "xNeed", "tail": "a fork", "split": "train"}
    field = where
    if where in ("head", "relation", "tail", "split"):
        obj[where] = text
    elif where == "note":
        obj["note"] = text
    elif where == "note.inner":
        obj["note"] = {"inner": text}
    else:
        obj[text] = 1
        field = text
    # C0 is always escaped in JSON; DEL and C1 are escaped or written as they are.
    line = json.dumps(obj, ensure_ascii=escaped).encode("utf-8")
    assert native(line, skd) is None, line
    row = _jsonl_row(1, line, skd)
    assert row.field == field, (line, row)
    assert f"U+{ord(control):04X}" in row.message


@pytest.mark.parametrize(
    "number",
    ["0", "7", "-3", "0.5", "0.25", "1.0", "-0.0", "0.0001", "123456789012345", "3.14159265358979"]
    + [
        f"{random.Random(i).uniform(-1e6, 1e6):.{i % 8 + 1}f}".rstrip("0") + "1" for i in range(200)
    ],
)
def test_numbers_it_keeps_as_they_came_are_the_ones_orjson_writes_back_unchanged(number):
    line = b'{"head":"h","relation":"r","tail":"t","n":' + number.encode() + b"}"
    got = native(line, False)
    assert got is not None, number
    assert got[4] == orjson.dumps({"n": orjson.loads(number)}).decode() == '{"n":' + number + "}"


@pytest.mark.parametrize(
    "number", ["1e-06", "1E5", "0.50", "-0", "0.00001", "1234567890123456", "1.0000000000000002"]
)
def test_numbers_orjson_would_respell_send_the_line_to_the_careful_reader(number):
    line = b'{"head":"h","relation":"r","tail":"t","n":' + number.encode() + b"}"
    assert native(line, False) is None


def test_plain_lines_of_the_skd_release_are_read_in_c():
    """The case the C reader exists for: it must take these, not hand them back."""
    lines = [
        orjson.dumps(
            {
                "head": f"PersonX eats {i}",
                "relation": "xNeed",
                "tail": "a fork",
                "split": "train",
                "p_valid_model": 0.913,
                "rec_0.5": True,
                "valid": [2, 1, -1, -2, -9][i % 5],
            }
        )
        + b"\n"
        for i in range(50)
    ] + [b'{"head": "Personne mange", "relation": "xWant", "tail": "un caf\xc3\xa9", "x": null}\n']
    heads, relations, tails, splits, fields, odd = skd_native.jsonl_columns(lines, True)
    assert odd == []
    assert heads[0] == "PersonX eats 0" and tails[-1] == "un café" and splits[-1] == "train"
    assert fields[0] == '{"p_valid_model":0.913,"rec_0.5":true,"valid":2}'
    assert fields[-1] == '{"x":null}'
    assert [careful(line, True) for line in lines] == list(
        zip(heads, relations, tails, splits, fields, strict=True)
    )


def test_odd_lines_are_left_to_python_and_the_others_read():
    plain = b'{"head":"h","relation":"r","tail":"t"}\n'
    odd_lines = [b"\n", b'{"head":"h\\u0041","relation":"r","tail":"t"}', b"\xff", b"{broken"]
    odd_lines.append(b'{"head":"h\tx","relation":"r","tail":"t"}')  # a raw tab
    lines = [plain]
    for line in odd_lines:
        lines += [line, plain]
    heads, relations, tails, splits, fields, odd = skd_native.jsonl_columns(lines, False)
    assert odd == [1, 3, 5, 7, 9]
    assert all(heads[i] is None and fields[i] is None for i in odd)
    assert heads[::2] == ["h"] * 6 and splits[::2] == ["train"] * 6 and fields[0] == ""


def test_blocks_with_odd_lines_keep_file_order_and_name_the_bad_lines(monkeypatch):
    """One odd line among plain ones is read by Python, in its place; bad and blank
    lines drop out with their errors."""
    import io

    from corpora.formats import blocks, jsonl

    monkeypatch.setattr(blocks, "BLOCK_ROWS", 6)
    lines = [
        b'{"head":"A","relation":"xNeed","tail":"one"}',
        b'{"head":"B","relation":"xNeed","tail":"two \\"quoted\\""}',
        b"",
        b'{"head":"C","relation":"xNeed","tail":"three","valid":7}',
        b'{"head":"D","relation":"xNeed","tail":"  four "}',
        b'{"head":"E","relation":"xNeed","tail":"five"}',
        b'{"head":"F","relation":"xNeed","tail":"six"}',
    ]
    blocks = list(jsonl._jsonl_blocks(io.BytesIO(b"\n".join(lines) + b"\n"), skd=True))
    rows = [(n, h, t) for b in blocks for n, h, t in zip(b.lines, b.heads, b.tails, strict=True)]
    assert rows == [
        (1, "A", "one"),
        (2, "B", 'two "quoted"'),
        (5, "D", "four"),
        (6, "E", "five"),
        (7, "F", "six"),
    ]
    assert [(e.line, e.field) for b in blocks for e in b.errors] == [(4, "valid")]


@settings(max_examples=300, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.integers(-(2**63), 2**63 - 1),
            st.text(alphabet=st.sampled_from("ab\\\t\n\r é\x00")),
            st.sampled_from(["train", "dev"]),
            st.booleans(),
        ),
        min_size=1,
        max_size=20,
    ),
    flagged=st.sampled_from([None, True, False]),
)
def test_copy_rows_in_c_are_the_python_copy_text(rows, flagged):
    """The rows for COPY (binary in C, text in Python): all of them, or only the held
    (or the other) ones. psycopg reads the binary tuples back as the text's rows."""
    block = Block(range(len(rows)), [], [], [r[1] for r in rows], [r[2] for r in rows], [], [])
    block.fields = [text[::-1] for text in block.tails]
    block.relation_ids = [n % 50 for n, *_ in rows]
    block.keys = [n for n, *_ in rows]
    block.counts = [1 + n % 3 for n, *_ in rows]
    head_ids = [abs(n) // 7 for n, *_ in rows]
    ids = [n // 3 for n, *_ in rows]
    held = None if flagged is None else np.array([r[3] for r in rows], dtype=bool)
    in_c = partition_fill._copy_rows(ids, head_ids, block, held, want=bool(flagged))
    saved, partition_fill.copy_binary = partition_fill.copy_binary, None
    try:
        in_python = partition_fill._copy_rows(ids, head_ids, block, held, want=bool(flagged))
    finally:
        partition_fill.copy_binary = saved
    chosen = [
        (i, hi, r, t, k, s, n, f)
        for i, hi, r, t, k, s, n, f, is_held in zip(
            ids,
            head_ids,
            block.relation_ids,
            block.tails,
            block.keys,
            block.splits,
            block.counts,
            block.fields,
            [False] * len(rows) if held is None else held,
            strict=True,
        )
        if held is None or is_held == bool(flagged)
    ]
    assert binary_rows(in_c, "qqqtqtlt") == chosen
    assert text_rows(in_python, "qqqtqtlt") == chosen


def binary_rows(data: bytes, kinds: str) -> list[tuple]:
    """Binary COPY tuples read back, as PostgreSQL reads them."""
    rows, at = [], 0
    while at < len(data):
        (width,) = struct.unpack_from("!h", data, at)
        at += 2
        assert width == len(kinds)
        row = []
        for kind in kinds:
            (length,) = struct.unpack_from("!i", data, at)
            field = data[at + 4 : at + 4 + length]
            at += 4 + length
            if kind == "t":
                row.append(field.decode())
            else:
                assert length == (8 if kind == "q" else 4)
                row.append(int.from_bytes(field, "big", signed=True))
        rows.append(tuple(row))
    return rows


def text_rows(text: str, kinds: str) -> list[tuple]:
    """COPY text read back, as PostgreSQL reads it."""
    escapes = {"\\\\": "\\", "\\t": "\t", "\\n": "\n", "\\r": "\r"}
    rows = []
    for line in text.split("\n")[:-1]:
        fields = [re.sub(r"\\.", lambda m: escapes[m.group()], f) for f in line.split("\t")]
        rows.append(tuple(f if k == "t" else int(f) for f, k in zip(fields, kinds, strict=True)))
    return rows


def test_the_bloom_filter_in_c_sets_and_answers_as_the_numpy_one(monkeypatch):
    rng = random.Random(3)
    in_c, in_numpy = partition_fill._MaybeSeen(), partition_fill._MaybeSeen()
    previous = None
    for _ in range(4):
        rows = [
            [rng.randrange(1, 10**6) for _ in range(5000)],
            [rng.randrange(1, 40) for _ in range(5000)],
            [rng.randrange(-(2**63), 2**63) for _ in range(5000)],
        ]
        if previous:
            for column, before in zip(rows, previous, strict=True):
                column[:100] = before[:100]
        previous = rows
        answer_c = in_c.check_and_add(*rows)
        with monkeypatch.context() as patch:
            patch.setattr(partition_fill, "bloom_check_and_add", None)
            answer_numpy = in_numpy.check_and_add(*rows)
        assert np.array_equal(answer_c, answer_numpy)
        assert np.array_equal(in_c.bits, in_numpy.bits)
    assert answer_c[:100].all()


@settings(max_examples=500, deadline=None)
@given(tails=st.lists(messy_texts | clean_texts | st.sampled_from(["A Fork.", "ΑΣ", "İ!", " "])))
def test_tail_keys_in_c_are_tail_key(tails):
    from corpora.importing import tail_key

    assert skd_native.tail_keys(tails, tail_key) == [tail_key(tail) for tail in tails]


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.integers(1, 4), st.sampled_from(["train", "dev"]), st.integers(1, 3)),
        max_size=30,
    ),
    held=st.lists(st.booleans(), min_size=30, max_size=30),
)
def test_pairs_counted_in_c_are_the_rows_counted_in_python(rows, held):
    relation_ids, splits, counts = ([row[i] for row in rows] for i in range(3))
    # Equal splits that are different objects, as Python's reader makes them.
    splits = ["".join(list(split)) for split in splits]
    mask = np.array(held[: len(rows)], dtype=bool)
    expected: dict = {}
    for relation_id, split, count, is_held in zip(relation_ids, splits, counts, mask, strict=True):
        if not is_held:
            total = expected.setdefault((relation_id, split), [0, 0])
            total[0] += 1
            total[1] += count
    got = skd_native.count_pairs(relation_ids, splits, counts, mask, False)
    assert {(r, s): [n, o] for r, s, n, o in got} == expected
