"""Named cuts of a corpus that an app above this one provides (the critic's filter
presets): what to keep, and what to write beside the exported file (a dataset card).

`corpora` knows no app above it, so such an app registers a finder here when it loads
(`critic.apps`); exports by preset, from a page, the API or `export_corpus --preset`,
ask the finder for the cut."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.errors import AppError

from .exporting import ExportFilter, ExportSummary
from .models import Corpus


@dataclass(frozen=True)
class PresetCut:
    """What a preset keeps, and `after`, which writes what goes beside the exported file
    (given the export's summary; returns the path it wrote, if any)."""

    flt: ExportFilter
    after: Callable[[ExportSummary], Path | None]


# Finds a corpus's preset by id (int) or name (str); raises AppError when there is none.
PresetFinder = Callable[[Corpus, int | str], PresetCut]

_finder: PresetFinder | None = None


def preset_finder_register(finder: PresetFinder) -> None:
    global _finder
    _finder = finder


def preset_cut(*, corpus: Corpus, preset: int | str) -> PresetCut:
    if _finder is None:
        raise AppError("Exports by preset need the critic app installed.", field="preset")
    return _finder(corpus, preset)
