"""The two texts the critic reads for a triple: head with the relation's words, and tail.

The paper's name swap (West et al. 2021, the critic): PersonX, PersonY and PersonZ are
replaced by common first names, a draw at a time, and the critic's scores are averaged
over draws. Which names a draw gives depends only on the seed, the draw number and the
triple's head, so a triple gets the same names in every chunk, on every worker, and all
triples of one head share them (a head's text is built once per draw).
"""

from __future__ import annotations

import re

import xxhash

# Common first names (US census and SSA lists, both sexes), one word each.
NAMES: tuple[str, ...] = (
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda",
    "William", "Elizabeth", "David", "Barbara", "Richard", "Susan", "Joseph", "Jessica",
    "Thomas", "Sarah", "Charles", "Karen", "Christopher", "Nancy", "Daniel", "Lisa",
    "Matthew", "Betty", "Anthony", "Margaret", "Mark", "Sandra", "Donald", "Ashley",
    "Steven", "Kimberly", "Paul", "Emily", "Andrew", "Donna", "Joshua", "Michelle",
    "Kenneth", "Dorothy", "Kevin", "Carol", "Brian", "Amanda", "George", "Melissa",
    "Edward", "Deborah", "Ronald", "Stephanie", "Timothy", "Rebecca", "Jason", "Sharon",
    "Jeffrey", "Laura", "Ryan", "Cynthia", "Jacob", "Kathleen", "Gary", "Amy",
    "Nicholas", "Shirley", "Eric", "Angela", "Jonathan", "Helen", "Stephen", "Anna",
    "Larry", "Brenda", "Justin", "Pamela", "Scott", "Nicole", "Brandon", "Emma",
    "Benjamin", "Samantha", "Samuel", "Katherine", "Gregory", "Christine", "Frank", "Debra",
    "Alexander", "Rachel", "Raymond", "Catherine", "Patrick", "Carolyn", "Jack", "Janet",
    "Dennis", "Ruth", "Jerry", "Maria",
)  # fmt: skip

PERSON = re.compile(r"\bperson\s?([xyz])\b", re.IGNORECASE)
_SLOT = {"x": 0, "y": 1, "z": 2}


def head_text(head: str, verbalization: str) -> str:
    return f"{head.strip()}. {verbalization.strip()}"


def tail_text(tail: str) -> str:
    return tail.strip()


def draw_names(head: str, draw: int, seed: int = 0) -> tuple[str, str, str]:
    """Three different names for PersonX, PersonY and PersonZ of this head in this draw."""
    n = len(NAMES)
    h = xxhash.xxh64_intdigest(f"{seed}\x1f{draw}\x1f{head}".encode())
    x = h % n
    y = (x + 1 + (h >> 16) % (n - 1)) % n
    z = next(
        i
        for i in ((y + 1 + (h >> 32) % (n - 1)) % n, (x + n // 2) % n, (x + 1) % n)
        if i not in (x, y)
    )
    return NAMES[x], NAMES[y], NAMES[z]


def swap_names(text: str, names: tuple[str, str, str]) -> str:
    """The text with PersonX/PersonY/PersonZ (also "personx", "Person Y") replaced."""
    return PERSON.sub(lambda m: names[_SLOT[m.group(1).lower()]], text)


def pair_texts(
    head: str, verbalization: str, tail: str, *, draw: int | None = None, seed: int = 0
) -> tuple[str, str]:
    """(head + relation, tail) as the critic reads them; with `draw`, names swapped in."""
    first, second = head_text(head, verbalization), tail_text(tail)
    if draw is None:
        return first, second
    names = draw_names(head, draw, seed)
    return swap_names(first, names), swap_names(second, names)
