"""SVG geometry for the distillation pages (server-side, like critic.charts): the training
loss curve and the comparison's acceptance bars."""

from __future__ import annotations

from critic.charts import HEIGHT, PAD, WIDTH, _xy

# The acceptance bars, in SVG user units (the look of the campaign page's chart).
BARS_WIDTH = 600
BARS_LABEL = 220
BARS_RIGHT = 60
BARS_ROW = 24
BARS_BAR = 14
BARS_TOP = 6
BARS_AXIS = 24
LABEL_CHARS = 30


def loss_curve(history: list, total_steps: int = 0) -> dict | None:
    """Training loss against step; `history` is [[step, loss], ...] (the run's curve)."""
    points = [(float(p[0]), float(p[1])) for p in history or [] if p and p[1] is not None]
    if not points:
        return None
    x_max = max(float(total_steps or 0), max(step for step, _ in points)) or 1.0
    losses = [loss for _, loss in points]
    low, high = min(losses), max(losses)
    margin = (high - low) * 0.05 or max(abs(high) * 0.05, 0.01)
    y_min, y_max = max(0.0, low - margin), high + margin
    line = " ".join(_xy(step, loss, x_max, y_min, y_max) for step, loss in points)
    last_step, last_loss = points[-1]
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "pad": PAD,
        "line": line,
        "last": _xy(last_step, last_loss, x_max, y_min, y_max).split(","),
        "last_title": f"step {int(last_step):,}: loss {last_loss:.4f}",
        "points": len(points),
        "x_max": int(x_max),
        "y_min": f"{y_min:.3g}",
        "y_max": f"{y_max:.3g}",
        "axis_y": HEIGHT - PAD,
        "axis_x_end": WIDTH - 10,
    }


def _label(text: str) -> str:
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


def acceptance_bars(rows: list) -> dict | None:
    """One bar per comparison row (acceptance) with its 95% interval as whiskers."""
    if not rows:
        return None
    plot = BARS_WIDTH - BARS_LABEL - BARS_RIGHT

    def x(rate: float) -> str:
        return f"{BARS_LABEL + min(max(rate, 0.0), 1.0) * plot:.1f}"

    bars = []
    for i, row in enumerate(rows):
        acceptance = row.acceptance
        y = BARS_TOP + i * BARS_ROW
        bar = {
            "label": _label(f"{row.kind}: {row.name}"),
            "kind": row.kind,
            "label_y": f"{y + BARS_BAR / 2 + 4:.1f}",
            "y": f"{y:.1f}",
            "mid": f"{y + BARS_BAR / 2:.1f}",
            "cap_top": f"{y + 2:.1f}",
            "cap_bottom": f"{y + BARS_BAR - 2:.1f}",
            "rate": acceptance.rate,
        }
        if acceptance.rate is not None:
            low = acceptance.low if acceptance.low is not None else acceptance.rate
            high = acceptance.high if acceptance.high is not None else acceptance.rate
            bar.update(
                width=f"{min(max(acceptance.rate, 0.0), 1.0) * plot:.1f}",
                low=x(low),
                high=x(high),
                text=f"{100 * acceptance.rate:.0f}%",
                text_x=x(high),
                title=f"{row.kind} {row.name}: {100 * acceptance.rate:.1f}% acceptable "
                f"(95% interval {100 * low:.1f}–{100 * high:.1f}%, "
                f"{acceptance.basis or 'no'} basis, n={acceptance.n:,})",
            )
        bars.append(bar)
    bottom = BARS_TOP + len(rows) * BARS_ROW
    return {
        "width": BARS_WIDTH,
        "height": bottom + BARS_AXIS,
        "left": BARS_LABEL,
        "label_x": BARS_LABEL - 8,
        "bottom": bottom,
        "tick_label_y": bottom + 16,
        "bar_height": BARS_BAR,
        "bars": bars,
        "ticks": [{"x": x(t), "label": f"{round(100 * t)}%"} for t in (0, 0.25, 0.5, 0.75, 1)],
    }
