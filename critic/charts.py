"""SVG geometry for the dashboard's plots (server-side; no JS charting library)."""

from __future__ import annotations

WIDTH, HEIGHT, PAD = 320, 240, 36


def _xy(x: float, y: float, x_max: float = 1.0, y_min: float = 0.0, y_max: float = 1.0) -> str:
    px = PAD + (x / x_max if x_max else 0) * (WIDTH - PAD - 10)
    span = (y_max - y_min) or 1.0
    py = HEIGHT - PAD - (y - y_min) / span * (HEIGHT - PAD - 10)
    return f"{px:.1f},{py:.1f}"


def curve(points: list[list[float]], x_label: str, y_label: str) -> dict | None:
    """A PR or ROC curve: points are [x, y, threshold]."""
    if not points:
        return None
    ordered = sorted(points, key=lambda p: (p[0], -p[1]))
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "pad": PAD,
        "line": " ".join(_xy(p[0], p[1]) for p in ordered),
        "x_label": x_label,
        "y_label": y_label,
        "axis_y": HEIGHT - PAD,
        "axis_x_end": WIDTH - 10,
    }


def learning_curve(points: list[dict]) -> dict | None:
    """ROC-AUC against label count, one dot per version."""
    scored = [p for p in points if p["roc_auc"] is not None]
    if not scored:
        return None
    x_max = max(p["labels"] for p in scored) * 1.05
    y_min = min(0.5, min(p["roc_auc"] for p in scored))
    dots = [
        {
            "xy": _xy(p["labels"], p["roc_auc"], x_max, y_min).split(","),
            "title": f"v{p['version']}: {p['labels']:,} labels, ROC-AUC {p['roc_auc']:.3f}",
            "active": p["active"],
        }
        for p in scored
    ]
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "pad": PAD,
        "line": " ".join(_xy(p["labels"], p["roc_auc"], x_max, y_min) for p in scored),
        "dots": dots,
        "x_max": int(x_max),
        "y_min": round(y_min, 2),
        "axis_y": HEIGHT - PAD,
        "axis_x_end": WIDTH - 10,
    }
