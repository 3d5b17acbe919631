"""The two texts the critic reads for a triple: head with the relation's words, and tail."""

from __future__ import annotations


def head_text(head: str, verbalization: str) -> str:
    return f"{head.strip()}. {verbalization.strip()}"


def tail_text(tail: str) -> str:
    return tail.strip()
