"""SVG chart geometry shared by the apps' plots (server-side; no JS charting library).

A chart is drawn in a viewBox of WIDTH × HEIGHT units and scaled by CSS to the width of
its card. `Frame` maps data to that box and lays out the axes: ticks at round numbers
with their labels on both axes, and a title per axis (templates/critic/_chart_axes.html
draws them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

WIDTH, HEIGHT = 560, 300
LEFT, RIGHT, TOP, BOTTOM = 54, 16, 14, 46  # room for tick labels and axis titles
TICKS = 6


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


def tick_label(value: float, ticks: list[float]) -> str:
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
                {"pos": round(self.px(v), 1), "label": tick_label(v, x_ticks)} for v in x_ticks
            ],
            "y_ticks": [
                {"pos": round(self.py(v), 1), "label": tick_label(v, y_ticks)} for v in y_ticks
            ],
            "x_label": x_label,
            "y_label": y_label,
            "x_title": {"x": round((self.left + self.right) / 2, 1), "y": self.height - 6},
            "y_title": {"x": -round((self.top + self.bottom) / 2, 1), "y": 14},
        }
