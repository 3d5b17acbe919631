"""SVG geometry for the dashboard's plots (server-side; no JS charting library).

A chart is drawn in a viewBox of WIDTH × HEIGHT units and scaled by CSS to the width of
its card. `Frame` maps data to that box and lays out the axes: ticks at round numbers
with their labels on both axes, and a title per axis (templates/critic/_chart_axes.html
draws them).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass

WIDTH, HEIGHT = 560, 300
LEFT, RIGHT, TOP, BOTTOM = 54, 16, 14, 46  # room for tick labels and axis titles
TICKS = 6
LABEL_CHARS = 14  # a learning-curve point's label, "v12 · 1,234"


def nice_ticks(low: float, high: float, count: int = TICKS) -> list[float]:
    """About `count` round values (1, 2 or 5 times a power of ten) from low to high."""
    if high <= low:
        return [low]
    raw = (high - low) / max(1, count - 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw * 0.999)
    first = math.ceil(low / step - 1e-9) * step
    ticks = []
    value = first
    while value <= high + step * 1e-6:
        ticks.append(round(value, 10))
        value += step
    return ticks


def covering_ticks(low: float, high: float, count: int = TICKS) -> list[float]:
    """Round ticks from at or below `low` to at or above `high`, so the data fits inside
    (around a single value when they are equal)."""
    if high <= low:
        pad = abs(low) * 0.05 or 0.5
        low, high = low - pad, high + pad
    ticks = nice_ticks(low, high, count)
    step = ticks[1] - ticks[0] if len(ticks) > 1 else (abs(high - low) or 1.0)
    if ticks[0] > low + 1e-12:
        ticks.insert(0, round(ticks[0] - step, 10))
    if ticks[-1] < high - 1e-12:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def _tick_label(value: float, ticks: list[float]) -> str:
    """As many decimals as the ticks need (0.0, 0.2, …; 0.05, 0.10, …), thousands
    separated."""
    decimals = max(len(f"{t:.6f}".rstrip("0").split(".")[1]) for t in ticks)
    return f"{value:,.{decimals}f}"


def label_place(frame: Frame, x: float, y: float) -> dict:
    """Where a point's label goes: right of and above it, or left of / below it near the
    right edge / the top (static/js/critic.js places the moving marker's label the same)."""
    left = x > frame.right - 80
    below = y < frame.top + 20
    return {
        "anchor": "end" if left else "start",
        "dx": -9 if left else 9,
        "dy": 18 if below else -9,
    }


@dataclass(frozen=True)
class Frame:
    """Data ranges mapped onto the chart's box (y grows upwards)."""

    x_min: float
    x_max: float
    y_min: float
    y_max: float
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def left(self) -> int:
        return LEFT

    @property
    def right(self) -> int:
        return self.width - RIGHT

    @property
    def top(self) -> int:
        return TOP

    @property
    def bottom(self) -> int:
        return self.height - BOTTOM

    def px(self, x: float) -> float:
        span = (self.x_max - self.x_min) or 1.0
        return self.left + (x - self.x_min) / span * (self.right - self.left)

    def py(self, y: float) -> float:
        span = (self.y_max - self.y_min) or 1.0
        return self.bottom - (y - self.y_min) / span * (self.bottom - self.top)

    def xy(self, x: float, y: float) -> str:
        return f"{self.px(x):.1f},{self.py(y):.1f}"

    def axes(
        self,
        x_label: str,
        y_label: str,
        x_ticks: list[float] | None = None,
        y_ticks: list[float] | None = None,
    ) -> dict:
        """What the template draws: the box, grid lines and labelled ticks, axis titles."""
        x_ticks = x_ticks if x_ticks is not None else nice_ticks(self.x_min, self.x_max)
        y_ticks = y_ticks if y_ticks is not None else nice_ticks(self.y_min, self.y_max)
        return {
            "width": self.width,
            "height": self.height,
            "left": self.left,
            "right": self.right,
            "top": self.top,
            "bottom": self.bottom,
            "x_ticks": [
                {"pos": round(self.px(v), 1), "label": _tick_label(v, x_ticks)} for v in x_ticks
            ],
            "y_ticks": [
                {"pos": round(self.py(v), 1), "label": _tick_label(v, y_ticks)} for v in y_ticks
            ],
            "x_label": x_label,
            "y_label": y_label,
            "x_title": {"x": round((self.left + self.right) / 2, 1), "y": self.height - 6},
            "y_title": {"x": -round((self.top + self.bottom) / 2, 1), "y": 14},
        }


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


def learning_curve(points: list[dict]) -> dict | None:
    """ROC-AUC against label count, one labelled point per version ("v3 · 1,200"). Versions
    that land on the same spot (retrained on the same labels, or another tier) are set side
    by side and their labels stacked, so none hides another."""
    scored = sorted(
        (p for p in points if p["roc_auc"] is not None), key=lambda p: (p["labels"], p["version"])
    )
    if not scored:
        return None
    x_ticks = covering_ticks(0, max(p["labels"] for p in scored) or 1)
    y_ticks = covering_ticks(min(0.5, min(p["roc_auc"] for p in scored)), 1.0)
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
                f"labels, ROC-AUC {p['roc_auc']:.3f}" + (" (active)" if p["active"] else ""),
                "active": p["active"],
                "square": p.get("tier") == "cross-encoder",
                "box": (round(x - 5, 1), round(y - 5, 1)),
                "version": p["version"],
            }
        )
    return {
        "axes": frame.axes("labels", "ROC-AUC (held out)", x_ticks, y_ticks),
        "line": " ".join(
            frame.xy(p["labels"], p["roc_auc"]) for p in sorted(scored, key=lambda p: p["version"])
        ),
        "dots": dots,
        "tiers": sorted({p.get("tier") or "" for p in scored}),
    }
