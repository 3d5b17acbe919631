"""The critic's filter presets as cuts for corpus exports (see corpora.presets): what a
preset keeps, and its dataset card written beside the exported file."""

from __future__ import annotations

from corpora.models import Corpus
from corpora.presets import PresetCut


def preset_cut_find(corpus: Corpus, preset: int | str) -> PresetCut:
    from .cards import card_write
    from .errors import CriticError
    from .models import FilterPreset
    from .services.presets import preset_filter

    presets = FilterPreset.objects.filter(corpus=corpus).select_related("version")
    found = (
        presets.filter(pk=preset) if isinstance(preset, int) else presets.filter(name=preset)
    ).first()
    if found is None:
        known = ", ".join(presets.values_list("name", flat=True))
        raise CriticError(
            f"Corpus {corpus.name!r} has no preset named {preset!r} "
            f"(presets: {known or 'none yet'}).",
            field="preset",
        )
    return PresetCut(
        flt=preset_filter(preset=found),
        after=lambda summary: card_write(preset=found, summary=summary),
    )
