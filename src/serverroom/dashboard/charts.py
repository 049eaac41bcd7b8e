"""Bar charts as inline SVG, drawn on the server (the dashboard runs no chart library).

``stacked_bars`` draws one bar per label, stacked by series, with a y axis scaled to the
tallest bar, a legend, and a ``<title>`` per segment that a pointer shows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f")
WIDTH, HEIGHT = 760, 240
LEFT, BOTTOM, TOP, RIGHT = 64, 28, 12, 8


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float]


def _nice_max(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten at or above ``value``."""
    if value <= 0:
        return 1.0
    scale = 1.0
    while scale * 10 <= value:
        scale *= 10
    while scale > value:
        scale /= 10
    for step in (1, 2, 5, 10):
        if step * scale >= value:
            return step * scale
    return 10 * scale


def stacked_bars(
    labels: Sequence[str], series: Sequence[Series], fmt: Callable[[float], str], title: str
) -> str:
    """An SVG chart of ``series`` stacked per label; ``fmt`` writes an axis or bar value."""
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    top = _nice_max(max(totals, default=0.0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(1, len(labels))
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img"'
        f' aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for tick in range(5):
        value = top * tick / 4
        y = TOP + plot_h - plot_h * tick / 4
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(fmt(value))}</text>'
        )
    every = max(1, len(labels) // 10)
    for i, label in enumerate(labels):
        x = LEFT + i * slot + slot * 0.15
        base = float(TOP + plot_h)
        for n, s in enumerate(series):
            height = plot_h * s.values[i] / top
            if height <= 0:
                continue
            base -= height
            tip = f"{s.name} · {label}: {fmt(s.values[i])}"
            parts.append(
                f'<rect x="{x:.1f}" y="{base:.1f}" width="{slot * 0.7:.1f}" height="{height:.1f}"'
                f' fill="{PALETTE[n % len(PALETTE)]}"><title>{escape(tip)}</title></rect>'
            )
        if i % every == 0:
            parts.append(
                f'<text x="{x + slot * 0.35:.1f}" y="{HEIGHT - 8}" text-anchor="middle">'
                f"{escape(label)}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


def legend(series: Sequence[Series]) -> list[tuple[str, str]]:
    """(colour, name) of each series, in the charts' order."""
    return [(PALETTE[n % len(PALETTE)], s.name) for n, s in enumerate(series)]
