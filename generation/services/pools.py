"""Few-shot pools: examples imported from TSV lines or files."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from corpora.models import Relation

from ..errors import GenerationError
from ..models import FewShotExample, FewShotPool

logger = logging.getLogger(__name__)


def pool_import_tsv(*, pool: FewShotPool, path: str | Path) -> int:
    """Add examples from an ATOMIC TSV file (see pool_import_lines); how many are new."""
    with open(path, encoding="utf-8") as handle:
        return pool_import_lines(pool=pool, lines=handle, source=f"{path}, ")


def pool_import_lines(*, pool: FewShotPool, lines: Iterable[str], source: str = "") -> int:
    """Add ATOMIC TSV lines (head, relation, tail): every head is a seed event, every tail
    other than 'none' of a known relation an example. Errors name ``source`` and the line.
    Returns how many examples are new."""
    relations = dict(Relation.objects.values_list("name", "id"))
    rows: list[FewShotExample] = []
    heads: dict[str, None] = {}
    for line_number, line in enumerate(lines, start=1):
        parts = line.rstrip("\n").split("\t")
        if len(parts) != 3:
            raise GenerationError(
                f"{source}line {line_number}: expected head<TAB>relation<TAB>tail", field="tsv"
            )
        head, relation, tail = (p.strip() for p in parts)
        if not head:
            raise GenerationError(f"{source}line {line_number}, field 'head': empty", field="tsv")
        heads[head] = None
        if relation in relations and tail and tail.lower() != "none":
            rows.append(
                FewShotExample(pool=pool, head=head, relation_id=relations[relation], tail=tail)
            )
    rows += [FewShotExample(pool=pool, head=head, tail="") for head in heads]
    before = pool.examples.count()
    FewShotExample.objects.bulk_create(rows, ignore_conflicts=True, batch_size=2000)
    return pool.examples.count() - before


def examples_import(*, pool: FewShotPool, lines: list[str]) -> int:
    """Add checked TSV lines (teaching_forms.example_lines) to a pool; how many are new."""
    return pool_import_lines(pool=pool, lines=lines)
