"""The dashboard's plots: PR and ROC curves with a threshold marker, the learning curve.
The geometry (frames, ticks, labels) is core.charts."""

from __future__ import annotations

from bisect import bisect_left

from core.charts import (
    Frame,
    covering_ticks,
    label_place,
)

from .models import CriticConfig

LABEL_CHARS = 14  # a learning-curve point's label, "v12 · 1,234"


def point_at(points: list[list[float]], threshold: float) -> tuple[float, float] | None:
    """The curve's (x, y) at a threshold, interpolated between the thresholds it was
    computed at (points are [x, y, threshold]); the nearest end outside them.
    static/js/critic.js does the same in the browser as the slider moves."""
    ordered = sorted(points, key=lambda p: p[2])
    if not ordered:
        return None
    keys = [p[2] for p in ordered]
    i = bisect_left(keys, threshold)
    if i == 0:
        return ordered[0][0], ordered[0][1]
    if i >= len(ordered):
        return ordered[-1][0], ordered[-1][1]
    a, b = ordered[i - 1], ordered[i]
    share = (threshold - a[2]) / ((b[2] - a[2]) or 1.0)
    return a[0] + share * (b[0] - a[0]), a[1] + share * (b[1] - a[1])


def curve(
    points: list[list[float]], x_label: str, y_label: str, threshold: float | None = None
) -> dict | None:
    """A PR or ROC curve: points are [x, y, threshold], both axes 0 to 1, with a marker
    at `threshold` that the threshold slider moves (the points' pixel positions and
    thresholds are handed to the browser for that)."""
    if not points:
        return None
    frame = Frame(0.0, 1.0, 0.0, 1.0)
    ordered = sorted(points, key=lambda p: (p[0], -p[1]))
    by_threshold = sorted(points, key=lambda p: p[2])
    chart = {
        "axes": frame.axes(x_label, y_label),
        "line": " ".join(frame.xy(p[0], p[1]) for p in ordered),
        "x_label": x_label,
        "y_label": y_label,
        "marker_points": [
            [round(frame.px(p[0]), 1), round(frame.py(p[1]), 1), p[2]] for p in by_threshold
        ],
        "marker": None,
    }
    if threshold is not None:
        x, y = point_at(points, threshold)
        chart["marker"] = {
            "x": round(frame.px(x), 1),
            "y": round(frame.py(y), 1),
            **label_place(frame, frame.px(x), frame.py(y)),
            "label": f"t = {threshold:.3f}",
            "title": f"threshold {threshold:.3f}: {x_label} {x:.3f}, {y_label} {y:.3f}",
        }
    return chart


def _samplings_title(new_by_sampling: dict | None) -> str:
    if not new_by_sampling:
        return ""
    parts = ", ".join(f"{name} {n:,}" for name, n in new_by_sampling.items())
    return f"; new labels by sampling: {parts}"


TIER_ORDER = tuple(CriticConfig.Tier.values)


def tier_series(points: list[dict]) -> dict[str, list[tuple[int, float, int]]]:
    """ROC-AUC of each tier against label count, as (labels, ROC-AUC, version): a version
    of one tier gives its own point; a stacked version gives one for each tier and for
    the stack, all measured on the same held-out labels (`tier_roc_auc`)."""
    series: dict[str, list[tuple[int, float, int]]] = {}
    for p in sorted(points, key=lambda p: (p["labels"], p["version"])):
        measured = p.get("tier_roc_auc") or {p.get("tier") or "critic": p["roc_auc"]}
        for tier, auc in measured.items():
            if auc is not None:
                series.setdefault(tier, []).append((p["labels"], float(auc), p["version"]))
    return dict(
        sorted(
            series.items(),
            key=lambda item: TIER_ORDER.index(item[0]) if item[0] in TIER_ORDER else 9,
        )
    )


def learning_curve(points: list[dict]) -> dict | None:
    """ROC-AUC against label count, one labelled point per version ("v3 · 1,200"). Versions
    that land on the same spot (retrained on the same labels, or another tier) are set side
    by side and their labels stacked, so none hides another."""
    scored = sorted(
        (p for p in points if p["roc_auc"] is not None), key=lambda p: (p["labels"], p["version"])
    )
    if not scored:
        return None
    series = tier_series(points)
    lowest = min([p["roc_auc"] for p in scored] + [a for f in series.values() for _, a, _ in f])
    x_ticks = covering_ticks(0, max(p["labels"] for p in scored) or 1)
    y_ticks = covering_ticks(min(0.5, lowest), 1.0)
    frame = Frame(0.0, x_ticks[-1] or 1.0, y_ticks[0], 1.0)
    dots: list[dict] = []
    for p in scored:
        x, y = frame.px(p["labels"]), frame.py(p["roc_auc"])
        # Dodge: a dot within 7 units of an earlier one moves right of it.
        while any(abs(d["x"] - x) < 7 and abs(d["y"] - y) < 7 for d in dots):
            x += 8
        label_y = y - 10
        while any(abs(d["x"] - x) < 64 and abs(d["label_y"] - label_y) < 13 for d in dots):
            label_y -= 13
        dots.append(
            {
                "x": round(x, 1),
                "y": round(y, 1),
                "label_y": round(max(label_y, 10), 1),
                "label": f"v{p['version']} · {p['labels']:,}"[:LABEL_CHARS],
                "title": f"v{p['version']} ({p.get('tier') or 'critic'}): {p['labels']:,} "
                f"labels, ROC-AUC {p['roc_auc']:.3f}"
                + (f"; scores with {p['chosen']}" if p.get("chosen") else "")
                + (" (active)" if p["active"] else "")
                + _samplings_title(p.get("new_by_sampling")),
                "sampling": p.get("sampling"),
                "active": p["active"],
                "square": p.get("tier") in ("cross-encoder", "stacked"),
                "box": (round(x - 5, 1), round(y - 5, 1)),
                "version": p["version"],
            }
        )
    return {
        "axes": frame.axes("labels", "ROC-AUC (held out)", x_ticks, y_ticks),
        "tier_lines": [
            {
                "tier": tier,
                "slug": tier.replace("-", "_"),
                "line": " ".join(frame.xy(labels, auc) for labels, auc, _ in found),
                # A mark per figure: a tier measured at one label count is a point only.
                "marks": [
                    {
                        "x": round(frame.px(labels), 1),
                        "y": round(frame.py(auc), 1),
                        "title": f"{tier}, v{version}: {labels:,} labels, ROC-AUC {auc:.3f}",
                    }
                    for labels, auc, version in found
                ],
                "title": f"{tier}: "
                + ", ".join(f"{labels:,} labels {auc:.3f}" for labels, auc, _ in found),
            }
            for tier, found in series.items()
        ]
        if len(series) > 1
        else [],
        "line": " ".join(
            frame.xy(p["labels"], p["roc_auc"]) for p in sorted(scored, key=lambda p: p["version"])
        ),
        "dots": dots,
        "tiers": sorted({p.get("tier") or "" for p in scored}),
        "samplings": sorted({p["sampling"] for p in scored if p.get("sampling")}),
    }
