"""Corpus import: parse in a thread, load in bulk, all-or-nothing by default.

- `file_import`: `corpus_import_file` (one file read, staged, loaded and recorded),
  `ImportSummary`, `read_limits`
- `staging`: blocks of rows made ready for a loader (relations resolved, tails hashed
  with `tail_key`, "none" tails dropped, repeats folded): `StageBlock`
- `rejects`: where invalid rows go, and `CorpusImportError`
- `turns`: imports into one corpus take turns (PostgreSQL advisory lock)
- `empty_corpus`: a corpus an import creates, removed again if the import fails

The public names are re-exported here; private helpers are reached in their own module.
"""

from .empty_corpus import IMPORTING_JOB
from .file_import import ImportSummary, corpus_import_file, drops_none_by_default, read_limits
from .rejects import CorpusImportError
from .staging import NONE_TAIL, NONE_TAIL_KEY, StageBlock, tail_key
from .turns import import_turn_try

__all__ = [
    "IMPORTING_JOB",
    "NONE_TAIL",
    "NONE_TAIL_KEY",
    "CorpusImportError",
    "ImportSummary",
    "StageBlock",
    "corpus_import_file",
    "drops_none_by_default",
    "import_turn_try",
    "read_limits",
    "tail_key",
]
