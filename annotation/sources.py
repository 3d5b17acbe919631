"""Where an item of a blind evaluation came from (`Item.source`), kept for researchers and
never shown to annotators (`selectors.item_view` and the API's item payload leave it out).

Blank for an ordinary item. A blind campaign mixes triples of two corpora: its own (a
student's outputs) and another's (the teacher's tails for the same heads and relations).
An item of the other corpus is "foreign": its triple is not one of the campaign corpus's,
so its label is never read as a label of that corpus (`critic.labels`).
"""

from __future__ import annotations

STUDENT = "student"
TEACHER = "teacher"
# The same tail written by both for the same head and relation: judged once, counted for
# both sources. Its triple is the campaign corpus's own.
BOTH = "both"
SOURCES = (STUDENT, TEACHER, BOTH)
FOREIGN_SOURCES = (TEACHER,)


def counts_for(source: str) -> tuple[str, ...]:
    """The sources an item of `source` is counted for."""
    return (STUDENT, TEACHER) if source == BOTH else (source,)
