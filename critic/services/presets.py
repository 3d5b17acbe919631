"""Filter presets (a critic version's threshold(s) over a corpus, saved from the
dashboard) and the filtered export of a preset with its dataset card."""

from __future__ import annotations

from corpora.models import Corpus, Relation
from jobs.models import Job

from ..errors import CriticError
from ..limits import preset_settings_check
from ..models import CorpusScoring, CriticVersion, FilterPreset


def preset_save(
    *,
    corpus: Corpus,
    name: str,
    version: CriticVersion,
    threshold: float,
    relation_thresholds: dict[str, float] | None = None,
    target_precision: float | None = None,
    description: str = "",
    created_by=None,
) -> FilterPreset:
    """Create or replace the named preset, with the dashboard's estimates at its cut."""
    from .. import selectors

    relation_thresholds = {k: float(v) for k, v in (relation_thresholds or {}).items()}
    preset_settings_check(
        name=name,
        threshold=threshold,
        relation_thresholds=relation_thresholds,
        target_precision=target_precision,
    )
    if version.corpus_id != corpus.pk:
        raise CriticError(f"{version.label} is a critic of another corpus.")
    known = set(
        Relation.objects.filter(name__in=relation_thresholds).values_list("name", flat=True)
    )
    unknown = sorted(set(relation_thresholds) - known)
    if unknown:
        raise CriticError(
            f"Unknown relation(s) in the thresholds: {', '.join(unknown)}.",
            field="relation_thresholds",
        )
    report = selectors.threshold_report(
        corpus=corpus, version=version, threshold=threshold, relation_thresholds=relation_thresholds
    )
    preset, _ = FilterPreset.objects.update_or_create(
        corpus=corpus,
        name=name,
        defaults={
            "version": version,
            "threshold": threshold,
            "relation_thresholds": relation_thresholds,
            "target_precision": target_precision,
            "description": description,
            "estimates": report.as_card(),
            "created_by": created_by,
        },
    )
    return preset


def preset_delete(*, preset: FilterPreset) -> None:
    preset.delete()


def preset_filter(*, preset: FilterPreset):
    """The export filter of a preset, refusing scores from another version."""
    from corpora.exporting import ExportFilter

    scoring = CorpusScoring.objects.filter(corpus=preset.corpus).first()
    if scoring is None or scoring.version_id != preset.version_id:
        in_corpus = f"v{scoring.version.number}" if scoring else "no critic"
        raise CriticError(
            f"Preset '{preset.name}' cuts scores of {preset.version.label}, but the corpus holds "
            f"scores of {in_corpus}. Save the preset again on the dashboard for the active "
            "version (or activate and rescore with its version)."
        )
    flags = tuple(sorted(preset.version.recall_thresholds.items()))
    return ExportFilter(
        min_score=preset.threshold,
        relation_min_scores=tuple(sorted(preset.relation_thresholds.items())),
        critic_flags=flags,
    )


def preset_export_job_create(*, preset: FilterPreset, fmt: str, created_by=None) -> Job:
    """Queue the preset's filtered export (with its card); CriticError when the corpus holds
    another version's scores."""
    from corpora.exporting import ExportFilter
    from corpora.services import corpus_export_job_create, export_path_for

    preset_filter(preset=preset)
    return corpus_export_job_create(
        corpus=preset.corpus,
        fmt=fmt,
        out_path=export_path_for(corpus=preset.corpus, fmt=fmt),
        flt=ExportFilter(),
        created_by=created_by,
        preset_id=preset.pk,
    )


def preset_export(*, preset: FilterPreset, fmt: str, out_path, progress=None):
    """Export the part of the corpus the preset keeps, and its dataset card beside it (the
    corpus's export by preset, with the cut critic.export_presets gives)."""
    from corpora.services import corpus_export_preset

    return corpus_export_preset(
        corpus=preset.corpus, preset=preset.pk, fmt=fmt, out_path=out_path, progress=progress
    )
