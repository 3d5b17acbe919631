"""The rules every format's rows meet: what a head, relation, tail and split may be, the
SKD fields' values, and the forms in which texts are stored and compared.

Control characters: C0 (U+0000-U+001F) but tab, line feed and carriage return,
DEL (U+007F) and C1 (U+0080-U+009F) are refused wherever they appear, in the
head, relation, tail and split and in every other field kept (`source_fields`).
Tab and line breaks are whitespace, which cleaning turns into one space in the
stored texts. C1 characters are refused too: they are invisible, PostgreSQL's
text would keep them, and in practice they are the mark of text decoded with
the wrong encoding (Windows-1252 read as Latin-1).
"""

from __future__ import annotations

import re

from .rows import RowError

MAX_TEXT_LENGTH = 500
SKD_VALID_VALUES = frozenset({2, 1, -1, -2, -9})
CORE_FIELDS = ("head", "relation", "tail", "split")
DEFAULT_SPLIT = "train"
TAIL_END_CHARS = ".!?;, "
_SPLIT_RE = re.compile(r"^[a-z0-9_-]{1,16}$")
# Control characters refused (see the module's docstring).
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# The same in orjson's output, which escapes C0 (so a backslash sends the line to the
# careful check) but writes DEL and C1 as they are.
_CONTROL_IN_JSON = re.compile(rb"\\|\x7f|\xc2[\x80-\x9f]")


def clean_text(value: str) -> str:
    """Collapse runs of whitespace; the form in which heads and tails are stored."""
    return " ".join(value.split())


def normalize_tail(tail: str) -> str:
    """The form in which two tails count as the same (case, spacing, final punctuation)."""
    return " ".join(tail.lower().split()).rstrip(TAIL_END_CHARS)


def _tidy(value: str) -> str:
    """clean_text, skipped when there is nothing to clean (the common case).

    Every whitespace character but the plain space is unprintable, so a printable
    value needs cleaning only for doubled, leading or trailing spaces."""
    if not value.isprintable() or "  " in value or value[:1] == " " or value[-1:] == " ":
        return " ".join(value.split())
    return value


def _control_problem(value: str) -> str | None:
    """A message when `value` holds a refused control character."""
    found = _CONTROL.search(value)
    if found is None:
        return None
    return (
        f"holds the control character U+{ord(found.group()):04X} at character "
        f"{found.start() + 1} (control characters other than tab and line breaks are "
        "not allowed)"
    )


def _control_in_fields(obj: dict) -> tuple[str, str] | None:
    """(field, message) for the first refused control character in the names or values
    of the fields kept as source_fields, nested ones included (walked without
    recursion: orjson reads objects nested a thousand deep)."""
    stack: list[tuple[str, object]] = [("", obj)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, str):
            if problem := _control_problem(value):
                return where, problem
        elif isinstance(value, dict):
            for key, item in reversed(value.items()):
                field = f"{where}.{key}" if where else key
                if problem := _control_problem(key):
                    return field, f"its name {problem}"
                stack.append((field, item))
        elif isinstance(value, list):
            stack.extend((f"{where}[{i}]", item) for i, item in reversed(list(enumerate(value))))
    return None


def _check_core(line: int, head, relation, tail, split, raw: str) -> RowError | tuple:
    for field, value in (("head", head), ("relation", relation), ("tail", tail)):
        if value is None:
            return RowError(line, field, "missing", raw)
        if not isinstance(value, str):
            return RowError(line, field, f"must be text, got {type(value).__name__}", raw)
    if _CONTROL.search(head) or _CONTROL.search(relation) or _CONTROL.search(tail):
        for field, value in (("head", head), ("relation", relation), ("tail", tail)):
            if problem := _control_problem(value):
                return RowError(line, field, problem, raw)
    head = clean_text(head)
    tail = clean_text(tail)
    relation = relation.strip()
    if not head:
        return RowError(line, "head", "empty", raw)
    if not tail:
        return RowError(line, "tail", "empty", raw)
    if not relation:
        return RowError(line, "relation", "empty", raw)
    if len(head) > MAX_TEXT_LENGTH:
        return RowError(line, "head", f"longer than {MAX_TEXT_LENGTH} characters", raw)
    if len(tail) > MAX_TEXT_LENGTH:
        return RowError(line, "tail", f"longer than {MAX_TEXT_LENGTH} characters", raw)
    if split is None or split == "":
        split = DEFAULT_SPLIT
    elif isinstance(split, str) and (problem := _control_problem(split)):
        return RowError(line, "split", problem, raw)
    elif not isinstance(split, str) or not _SPLIT_RE.match(split.strip().lower()):
        return RowError(
            line, "split", f"{split!r} is not a split name (letters, digits, - or _)", raw
        )
    else:
        split = split.strip().lower()
    return head, relation, tail, split


def _check_skd_fields(line: int, obj: dict, raw: str) -> RowError | None:
    valid = obj.get("valid")
    if valid is not None and (type(valid) is not int or valid not in SKD_VALID_VALUES):
        return RowError(line, "valid", f"{valid!r} is not one of 2, 1, -1, -2, -9", raw)
    p_valid = obj.get("p_valid_model")
    if p_valid is not None and (type(p_valid) not in (int, float) or not 0 <= p_valid <= 1):
        return RowError(line, "p_valid_model", f"{p_valid!r} is not a number between 0 and 1", raw)
    return None
