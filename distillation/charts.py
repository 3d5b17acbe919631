"""SVG geometry for the distillation pages (server-side, like critic.charts): the training
loss curve and the comparison's acceptance bars."""

from __future__ import annotations

from annotation.charts import IntervalBar, interval_bars
from critic.charts import HEIGHT, PAD, WIDTH, _xy

LABEL_CHARS = 30
CURVE_POINTS = 600


def loss_curve(history: list, total_steps: int = 0) -> dict | None:
    """Training loss against step; `history` is [[step, loss], ...] (the run's curve)."""
    points = [(float(p[0]), float(p[1])) for p in history or [] if p and p[1] is not None]
    if not points:
        return None
    x_max = max(float(total_steps or 0), max(step for step, _ in points)) or 1.0
    losses = [loss for _, loss in points]
    logged = len(points)
    if len(points) > CURVE_POINTS:  # a long run logs thousands; the plot is 270 px wide
        every = -(-len(points) // CURVE_POINTS)
        points = points[::every] + ([points[-1]] if (len(points) - 1) % every else [])
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
        "points": logged,
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
    bars = []
    for row in rows:
        a = row.acceptance
        title = ""
        if a.rate is not None:
            low = a.low if a.low is not None else a.rate
            high = a.high if a.high is not None else a.rate
            title = (
                f"{row.kind} {row.name}: {100 * a.rate:.1f}% acceptable (95% interval "
                f"{100 * low:.1f}–{100 * high:.1f}%, {a.basis or 'no'} basis, n={a.n:,})"
            )
        bars.append(
            IntervalBar(
                label=_label(f"{row.kind}: {row.name}"),
                rate=a.rate,
                low=a.low,
                high=a.high,
                title=title,
            )
        )
    return interval_bars(bars, label_width=220, width=600)
