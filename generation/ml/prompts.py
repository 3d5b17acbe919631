"""Few-shot prompts for the teacher and defensive parsing of what it writes back.

Event generation: K seed events sampled into a numbered list; the teacher continues the
list. Inference generation: a relation's prompt template filled with K example heads and
their tails, then the new head; the teacher writes the tail. Prompts are reproducible from
a seed. No Django import here.

Cleaning keeps what the corpus can hold: one line, no control characters, at most
MAX_TEXT_LENGTH characters and max_words words, and each tail once by the corpus's own
notion of "the same tail" (formats.normalize_tail), so what cleaning keeps is what the
corpus gets.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from corpora.formats import MAX_TEXT_LENGTH, normalize_tail

MAX_TAIL_WORDS = 20
MAX_EVENT_WORDS = 25
_NUMBERING = re.compile(r"^\s*(?:\(?\d{1,3}[.):\]]|[-*•])\s*")
_QUOTES = "\"'`“”‘’"
# C0 and C1 control characters (tab and newline included: only the first line is kept,
# and a tab would split a TSV export), DEL, and lone surrogates that UTF-8 cannot encode.
_UNWRITABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def prompt_hash(prompt: str) -> str:
    return hashlib.sha1(prompt.encode("utf-8")).hexdigest()[:16]


def event_prompt(seeds: Sequence[str], k: int, rng: random.Random) -> str:
    """A numbered list of k seed events and the next number, for the teacher to go on."""
    if not seeds:
        raise ValueError("the few-shot pool has no seed events")
    chosen = rng.sample(list(seeds), min(k, len(seeds)))
    lines = [f"{i}. {event}" for i, event in enumerate(chosen, start=1)]
    return "\n".join(lines) + f"\n{len(chosen) + 1}."


def inference_prompt(
    template: str, examples: Sequence[tuple[str, str]], head: str, k: int, rng: random.Random
) -> str:
    """The relation's template filled for k (head, tail) examples, then for the new head.

    ``template`` holds ``{head}`` (e.g. "{head}. Before that, PersonX needed"); each example
    becomes "<filled template> <tail>." on its own line."""
    if "{head}" not in template:
        raise ValueError("a relation's prompt template must contain {head}")
    chosen = rng.sample(list(examples), min(k, len(examples))) if examples else []
    lines = [f"{template.replace('{head}', h)} {t.rstrip('.')}." for h, t in chosen]
    lines.append(template.replace("{head}", head))
    return "\n\n".join(lines)


def first_line(text: str) -> str:
    return text.strip().split("\n", 1)[0] if text.strip() else ""


def parse_numbered_list(text: str) -> list[str]:
    """Items of a numbered (or bulleted) list continuation; the first line continues the
    number the prompt ended with. Stops at the first line that is not a list item."""
    items = []
    for index, line in enumerate(text.split("\n")):
        if not line.strip():
            if items:
                break
            continue
        if index > 0 and not _NUMBERING.match(line):
            break
        items.append(_NUMBERING.sub("", line, count=1).strip())
    return items


def normalize(text: str) -> str:
    """Strip numbering, quotes, whitespace and a final period; keep the first sentence line;
    control characters become spaces."""
    text = _UNWRITABLE.sub(" ", first_line(text))
    text = _NUMBERING.sub("", text, count=1).strip()
    text = text.strip(_QUOTES).strip()
    while text.endswith((".", ",", ";")):
        text = text[:-1].rstrip()
    return re.sub(r"\s+", " ", text)


@dataclass
class Cleaned:
    kept: list[str] = field(default_factory=list)
    kept_index: list[int] = field(default_factory=list)  # position in the raw outputs
    dropped: Counter = field(default_factory=Counter)


def clean_outputs(
    outputs: Sequence[str],
    *,
    head: str = "",
    max_words: int = MAX_TAIL_WORDS,
    max_chars: int = MAX_TEXT_LENGTH,
    seen=(),
) -> Cleaned:
    """Drop empty, over-long (in words or characters), head-copying, 'none' and duplicate
    outputs, counting why. Two outputs are duplicates when the corpus would merge them
    (same normalize_tail: case, spacing, final punctuation).

    ``seen`` are normalized outputs already kept elsewhere (e.g. earlier batches of the
    same (head, relation)); they count as duplicates too."""
    result = Cleaned()
    known = {normalize_tail(s) for s in seen}
    head_key = normalize_tail(normalize(head))
    for index, raw in enumerate(outputs):
        text = normalize(raw)
        key = normalize_tail(text)
        if not key:
            result.dropped["empty"] += 1
        elif key == "none":
            result.dropped["none"] += 1
        elif len(text) > max_chars or len(text.split()) > max_words:
            result.dropped["too long"] += 1
        elif head_key and (key == head_key or key in head_key and len(key) > 0.8 * len(head_key)):
            result.dropped["copies the head"] += 1
        elif key in known:
            result.dropped["duplicate"] += 1
        else:
            known.add(key)
            result.kept.append(text)
            result.kept_index.append(index)
    return result
