"""Trend chart for `/nps trend`: a PNG made with matplotlib's object API on the Agg canvas.

pyplot is never imported: its global figure registry and backend switching are shared state that a
threaded web app must not touch. A Figure drawn on FigureCanvasAgg is private to the call.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from datetime import UTC, tzinfo

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from campaigns.scores.queries import TrendPoint

# 1200 x 675 px: 16:9 like Slack's preview, large fonts so that the numbers read on a phone.
SIZE_INCHES, DPI = (8.0, 4.5), 150
LINE, BAND, BARS, GRID = "#1f6feb", "#1f6feb", "#c9ced6", "#e6e8eb"
MAX_ANNOTATED = 16  # above this, per-point labels would overlap
MAX_TICKS = 12


def _label(point: TrendPoint, tz: tzinfo, monthly: bool) -> str:
    local = point.start.astimezone(tz)
    return f"{local:%b %Y}" if monthly else f"{local:%b} {local.day}"


def _is_monthly(points: Sequence[TrendPoint]) -> bool:
    return bool(points) and (points[0].end - points[0].start).days > 7


def trend_png(points: Sequence[TrendPoint], title: str, *, tz: tzinfo = UTC) -> bytes:
    """NPS per bucket as a line with its 95% margin band, response counts as bars behind it.

    `tz` is the zone the buckets were cut in (for the axis labels). Empty buckets leave a gap in the line.
    """
    figure = Figure(figsize=SIZE_INCHES, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    ax.set_title(title, fontsize=13, loc="left")
    if not points:
        ax.text(
            0.5, 0.5, "No responses in this period", ha="center", va="center", fontsize=14, color="#57606a"
        )
        ax.set_axis_off()
        return _png(figure)

    xs = list(range(len(points)))
    scores = [math.nan if p.nps is None else float(p.nps) for p in points]
    lows = [math.nan if p.nps is None or p.margin is None else max(-100.0, p.nps - p.margin) for p in points]
    highs = [math.nan if p.nps is None or p.margin is None else min(100.0, p.nps + p.margin) for p in points]

    # Counts on a right-hand axis drawn underneath: the NPS axes go on top with a transparent background.
    counts = ax.twinx()
    counts.bar(xs, [p.responses for p in points], color=BARS, width=0.6, label="responses")
    counts.set_ylabel("responses", fontsize=11, color="#57606a")
    counts.set_ylim(0, max(1, max(p.responses for p in points)) * 3)  # bars keep to the lower third
    counts.tick_params(labelsize=10, colors="#57606a")
    ax.set_zorder(counts.get_zorder() + 1)
    ax.patch.set_visible(False)

    ax.fill_between(xs, lows, highs, color=BAND, alpha=0.15, linewidth=0, label="95% margin")
    if len(points) == 1 and not math.isnan(lows[0]):
        ax.errorbar(xs, scores, yerr=[[scores[0] - lows[0]], [highs[0] - scores[0]]], color=LINE, capsize=6)
    ax.plot(xs, scores, color=LINE, linewidth=2.5, marker="o", markersize=6, label="NPS")
    if len(points) <= MAX_ANNOTATED:
        for x, y in zip(xs, scores, strict=True):
            if not math.isnan(y):
                ax.annotate(
                    f"{y:+.0f}", (x, y), textcoords="offset points", xytext=(0, 9), ha="center", fontsize=10
                )

    ax.axhline(0, color="#8c959f", linewidth=1, linestyle="--")
    ax.set_ylim(*_nps_limits(lows, highs, scores))
    ax.set_ylabel("NPS", fontsize=11)
    ax.grid(axis="y", color=GRID)
    ax.tick_params(labelsize=10)
    step = max(1, math.ceil(len(points) / MAX_TICKS))
    monthly = _is_monthly(points)
    ax.set_xticks(xs[::step], [_label(p, tz, monthly) for p in points[::step]])
    pad = max(0.6, (4 - len(points)) / 2)  # one or two points would otherwise get bars as wide as the chart
    ax.set_xlim(-pad, len(points) - 1 + pad)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    counts.spines["top"].set_visible(False)
    return _png(figure)


def _nps_limits(lows: list[float], highs: list[float], scores: list[float]) -> tuple[float, float]:
    """A y range around the data and its band (always showing 0), padded, within -100..100."""
    values = [v for v in (*lows, *highs, *scores) if not math.isnan(v)] + [0.0]
    low, high = min(values), max(values)
    pad = max(10.0, (high - low) * 0.15)
    return max(-105.0, low - pad), min(105.0, high + pad)


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def intervals_png(rows: Sequence[tuple[str, float, float, float, int]], title: str, *, xlabel: str) -> bytes:
    """Horizontal dots with their 95% intervals, one row per (label, value, low, high, n), top to bottom:
    segments' NPS (`nps compare`) or drivers' difference from the rest (`nps drivers`)."""
    height = max(SIZE_INCHES[1], 1.2 + 0.45 * len(rows))
    figure = Figure(figsize=(SIZE_INCHES[0], height))
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    ys = list(range(len(rows)))[::-1]
    for y, (_, value, low, high, _) in zip(ys, rows, strict=True):
        ax.plot([max(-100.0, low), min(100.0, high)], [y, y], color=BAND, alpha=0.35, linewidth=6)
        ax.plot([value], [y], "o", color=LINE, markersize=7)
        ax.annotate(f"{value:+.0f}", (value, y), textcoords="offset points", xytext=(0, 8), ha="center")
    ax.set_yticks(ys, [f"{label} (n={n})" for label, *_, n in rows])
    ax.axvline(0, color="#8b949e", linestyle="--", linewidth=1)
    ax.set_xlim(-105, 105)
    ax.set_xlabel(xlabel)
    ax.set_title(title.replace(" · ", "\n", 1) if len(title) > 60 else title, loc="left")
    ax.grid(axis="x", color=GRID)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    figure.tight_layout()
    return _png(figure)
