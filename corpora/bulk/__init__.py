"""Fast bulk loading of parsed triples, the best route each database has.

Rows arrive in blocks of columns (importing.StageBlock), already folded so
that a block holds each (head, relation, tail key) once with its count.
For each block the loader finds or creates the head events with two
set-based queries, puts the rows (now carrying head_id) in a temporary
stage table and merges them into the corpus with INSERT ... ON CONFLICT:
rows the corpus already has only add to `occurrences`.

- `base`: the stage table, the merge and `_Loader`, which every loader shares
- `sqlite`: `SqliteLoader`: staged first, merged in one short write transaction
- `postgres`: `PostgresLoader`: COPY into the stage, inside the caller's transaction
- `partition_fill`: `PartitionLoader`, for a corpus empty when its import begins
  (PostgreSQL): COPY into a bare table, indexed once full and attached as the
  corpus's partition
- `loaders`: `make_loader`, the loader for the database in use
- `whole_corpus`: counts, delete and drop of all of a corpus's triples

The public names are re-exported here; private helpers (and the native speed-ups that
tests turn off) are reached in their own module.
"""

from .loaders import make_loader
from .partition_fill import CorpusNotEmpty, PartitionLoader
from .postgres import PostgresLoader
from .sqlite import SqliteLoader
from .whole_corpus import corpus_counts, corpus_delete_triples, corpus_drop_triples

__all__ = [
    "CorpusNotEmpty",
    "PartitionLoader",
    "PostgresLoader",
    "SqliteLoader",
    "corpus_counts",
    "corpus_delete_triples",
    "corpus_drop_triples",
    "make_loader",
]
