"""The dataset card written beside a filtered export."""

from __future__ import annotations

from pathlib import Path

import orjson

from annotation.models import Campaign
from corpora.exporting import EXPORT_FORMATS
from generation.selectors import corpus_sources

from .models import FilterPreset


def _pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _count(value) -> str:
    return "n/a" if value is None else f"{value:,}"


def _interval(low, high) -> str:
    return "" if low is None else f" (95% CI {_pct(low)}–{_pct(high)})"


SPLIT_ORDER = {"train": 0, "val": 1, "dev": 1, "validation": 1, "test": 2}


def _splits(by_relation: dict[str, dict[str, int]]) -> list[str]:
    names = {split for splits in by_relation.values() for split in splits}
    return sorted(names, key=lambda s: (SPLIT_ORDER.get(s, 9), s))


def card_data(*, preset: FilterPreset, rows: int) -> dict:
    from .selectors import preset_kept_counts, threshold_report

    version = preset.version
    report = threshold_report(
        corpus=preset.corpus,
        version=version,
        threshold=preset.threshold,
        relation_thresholds=preset.relation_thresholds,
    )
    campaigns = [
        {
            "name": c.name,
            "purpose": c.purpose,
            "items": c.item_count,
            "krippendorff_alpha_ordinal": (c.stats.get("overall") or {}).get("alpha_ordinal"),
            "krippendorff_alpha_binary": (c.stats.get("overall") or {}).get("alpha_binary"),
            "fleiss_kappa": (c.stats.get("overall") or {}).get("fleiss_kappa"),
        }
        for c in Campaign.objects.filter(corpus=preset.corpus, aggregated_at__isnull=False)
    ]
    by_relation = preset_kept_counts(preset=preset)
    by_split: dict[str, int] = {}
    for splits in by_relation.values():
        for split, n in splits.items():
            by_split[split] = by_split.get(split, 0) + n
    splits = _splits(by_relation)
    return {
        "corpus": preset.corpus.name,
        "preset": preset.name,
        "rows_exported": rows,
        "critic": {
            "version": version.number,
            "tier": version.tier,
            "encoder": version.encoder,
            "trained_at": version.created_at.isoformat(),
            "labels": version.label_count,
            "acceptable_labels": version.positive_count,
            "audit_labels": version.audit_label_count,
            "held_out_metrics": version.metrics,
            "audit_metrics": version.audit_metrics,
            "recall_thresholds": version.recall_thresholds,
        },
        "threshold": preset.threshold,
        "relation_thresholds": preset.relation_thresholds,
        "target_precision": preset.target_precision,
        "estimate": report.as_card(),
        "counts": {
            "by_split": {split: by_split[split] for split in splits},
            "by_relation_and_split": {
                name: {split: by_relation[name].get(split, 0) for split in splits}
                for name in sorted(by_relation)
            },
        },
        "campaigns": campaigns,
        "sources": corpus_sources(corpus=preset.corpus),
    }


def card_markdown(data: dict) -> str:
    est, critic = data["estimate"], data["critic"]
    lines = [
        f"# {data['corpus']}: filtered by preset '{data['preset']}'",
        "",
        f"{data['rows_exported']:,} triples exported.",
        "",
        "## Critic",
        "",
        f"- version v{critic['version']} ({critic['tier']}, encoder {critic['encoder']}), "
        f"trained {critic['trained_at'][:16].replace('T', ' ')} UTC",
        f"- trained on {critic['labels']:,} labels ({critic['acceptable_labels']:,} acceptable); "
        f"{critic['audit_labels']:,} audit labels",
        f"- held-out ROC-AUC {_num(critic['held_out_metrics'].get('roc_auc'))}, average "
        f"precision {_num(critic['held_out_metrics'].get('average_precision'))}",
        "",
        "## Cut",
        "",
        f"- threshold {data['threshold']}"
        + (f", per relation {data['relation_thresholds']}" if data["relation_thresholds"] else ""),
        f"- estimated precision (acceptance of the kept triples) {_pct(est['precision'])}"
        f"{_interval(est['precision_low'], est['precision_high'])}",
        f"- estimated recall {_pct(est['recall'])}, F1 {_pct(est['f1'])}",
        f"- estimates rest on: {est['basis_description']}",
        "",
        "## Counts by relation",
        "",
        "| relation | threshold | kept | of | precision |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in est["relations"]:
        lines.append(
            f"| {row['relation']} | {row['threshold']} | {_count(row['kept'])} "
            f"| {_count(row['total'])} | {_pct(row['precision'])} |"
        )
    lines += _count_tables(data.get("counts") or {})
    sources = data.get("sources") or {}
    if sources.get("generation_runs") or sources.get("imports"):
        lines += ["", "## Where the corpus came from", ""]
        for run in sources.get("generation_runs", []):
            lines.append(
                f"- teacher run {run['id']}: teacher '{run['teacher']}' ({run['model']}), "
                f"few-shot pool '{run['pool']}', {run['triples']:,} triples"
            )
        for job in sources.get("imports", []):
            lines.append(
                f"- imported from {Path(job['file']).name} ({job['format']}, "
                f"{job['imported']:,} triples, {job['at'][:10]})"
            )
    if data["campaigns"]:
        lines += ["", "## Labels and agreement", ""]
        for c in data["campaigns"]:
            lines.append(
                f"- {c['name']} ({c['purpose']}, {c['items']:,} items): Krippendorff's alpha "
                f"ordinal {_num(c['krippendorff_alpha_ordinal'])}, "
                f"binary {_num(c['krippendorff_alpha_binary'])}, "
                f"Fleiss' kappa {_num(c['fleiss_kappa'])}"
            )
    return "\n".join(lines) + "\n"


def _count_tables(counts: dict) -> list[str]:
    """The exported triples by split, then by relation and split."""
    by_split = counts.get("by_split") or {}
    by_relation = counts.get("by_relation_and_split") or {}
    if not by_split:
        return []
    splits = list(by_split)
    lines = ["", "## Counts by split", "", "| split | triples |", "| --- | --- |"]
    lines += [f"| {split} | {n:,} |" for split, n in by_split.items()]
    lines.append(f"| all | {sum(by_split.values()):,} |")
    lines += [
        "",
        "## Counts by relation and split",
        "",
        "| relation | " + " | ".join(splits) + " | all |",
        "| --- | " + " | ".join("---" for _ in splits) + " | --- |",
    ]
    for name, row in by_relation.items():
        cells = " | ".join(f"{row.get(split, 0):,}" for split in splits)
        lines.append(f"| {name} | {cells} | {sum(row.values()):,} |")
    return lines


def card_paths(export: Path) -> tuple[Path, Path]:
    """NAME.card.md and NAME.card.json beside the export NAME.<format>[.gz]."""
    name = export.name.removesuffix(".gz")
    suffix = Path(name).suffix
    if suffix.lstrip(".") in EXPORT_FORMATS:
        name = name.removesuffix(suffix)
    return export.with_name(f"{name}.card.md"), export.with_name(f"{name}.card.json")


def _num(value) -> str:
    """Three decimals; n/a where a measure is undefined (e.g. agreement with one rater)."""
    return "n/a" if value is None else f"{value:.3f}"


def card_write(*, preset: FilterPreset, summary) -> Path:
    """Write NAME.card.md and NAME.card.json beside the export; returns the Markdown path."""
    data = card_data(preset=preset, rows=summary.rows)
    markdown, json_path = card_paths(Path(summary.path))
    markdown.write_text(card_markdown(data), encoding="utf-8")
    json_path.write_bytes(
        orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)
    )
    return markdown
