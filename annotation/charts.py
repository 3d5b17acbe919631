"""SVG geometry of the acceptance bars (a rate with its 95% interval per row), drawn by
templates/includes/interval_bars.html on the campaign page and the comparison page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ROW = 24
BAR = 14
TOP = 6
AXIS = 24
RIGHT = 60


@dataclass(frozen=True)
class IntervalBar:
    label: str
    rate: float | None
    low: float | None = None
    high: float | None = None
    title: str = ""


def interval_bars(
    bars: list[IntervalBar], *, label_width: int, width: int, overall: float | None = None
) -> dict[str, Any] | None:
    """Bars with whiskers in SVG user units; `overall` draws a line across all rows."""
    if not bars:
        return None
    plot = width - label_width - RIGHT

    def x(rate: float) -> str:
        return f"{label_width + min(max(rate, 0.0), 1.0) * plot:.1f}"

    drawn = []
    for i, bar in enumerate(bars):
        y = TOP + i * ROW
        item = {
            "label": bar.label,
            "label_y": f"{y + BAR / 2 + 4:.1f}",
            "y": f"{y:.1f}",
            "mid": f"{y + BAR / 2:.1f}",
            "cap_top": f"{y + 2:.1f}",
            "cap_bottom": f"{y + BAR - 2:.1f}",
            "rate": bar.rate,
        }
        if bar.rate is not None:
            low = bar.low if bar.low is not None else bar.rate
            high = bar.high if bar.high is not None else bar.rate
            item.update(
                width=f"{min(max(bar.rate, 0.0), 1.0) * plot:.1f}",
                low=x(low),
                high=x(high),
                text=f"{100 * bar.rate:.0f}%",
                text_x=x(high),
                title=bar.title,
            )
        drawn.append(item)
    bottom = TOP + len(bars) * ROW
    return {
        "width": width,
        "height": bottom + AXIS,
        "left": label_width,
        "label_x": label_width - 8,
        "bottom": bottom,
        "tick_label_y": bottom + 16,
        "bar_height": BAR,
        "bars": drawn,
        "ticks": [{"x": x(t), "label": f"{round(100 * t)}%"} for t in (0, 0.25, 0.5, 0.75, 1)],
        "overall_x": None if overall is None else x(overall),
    }
