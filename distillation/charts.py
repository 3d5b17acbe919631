"""SVG geometry for the distillation pages (server-side, like critic.charts): the training
loss curve and the comparison's acceptance bars."""

from __future__ import annotations

from annotation.charts import IntervalBar, interval_bars
from core.charts import Frame, covering_ticks

LABEL_CHARS = 30
CURVE_POINTS = 600


def _points(history: list | None) -> list[tuple[float, float]]:
    return [(float(p[0]), float(p[1])) for p in history or [] if p and p[1] is not None]


def loss_curve(
    history: list, total_steps: int = 0, eval_history: list | None = None
) -> dict | None:
    """Training loss and validation loss against step: `history` and `eval_history` are
    [[step, loss], ...] (the run's curves so far). The x axis spans the planned steps, so a
    run in progress shows how far it has come."""
    train, validation = _points(history), _points(eval_history)
    if not train and not validation:
        return None
    steps = [step for step, _ in train + validation]
    x_ticks = covering_ticks(0, max(float(total_steps or 0), max(steps)) or 1.0)
    losses = [loss for _, loss in train + validation]
    y_ticks = covering_ticks(min(losses), max(losses))
    frame = Frame(x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1], width=900, height=280)
    logged = len(train)
    if len(train) > CURVE_POINTS:  # a long run logs thousands; a few hundred draw the same
        every = -(-len(train) // CURVE_POINTS)
        train = train[::every] + ([train[-1]] if (len(train) - 1) % every else [])
    chart = {
        "axes": frame.axes("step", "loss", x_ticks, y_ticks),
        "line": " ".join(frame.xy(step, loss) for step, loss in train),
        "points": logged,
        "last": None,
        "validation_line": " ".join(frame.xy(step, loss) for step, loss in validation),
        "validation_dots": [
            {
                "x": round(frame.px(step), 1),
                "y": round(frame.py(loss), 1),
                "title": f"step {int(step):,}: validation loss {loss:.4f}",
            }
            for step, loss in validation
        ],
        "validation_points": len(validation),
        "validation_last": None,
    }
    if train:
        step, loss = train[-1]
        chart["last"] = {
            "x": round(frame.px(step), 1),
            "y": round(frame.py(loss), 1),
            "title": f"step {int(step):,}: loss {loss:.4f}",
        }
    if validation:
        step, loss = validation[-1]
        chart["validation_last"] = f"step {int(step):,}: validation loss {loss:.4f}"
    return chart


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
