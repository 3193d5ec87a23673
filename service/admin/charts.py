"""Ratings over the weeks as an inline SVG line chart: drawn by the app, no hosted service.

Pure: takes numbers, returns SVG text (every piece of text XML-escaped). Each series gets a colour
and a marker shape, so the chart does not rely on colour alone, and the numbers are also given as
a table beside it for screen readers.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape

WIDTH, HEIGHT = 560, 260
LEFT, RIGHT, TOP, BOTTOM = 44, 16, 16, 40
PALETTE = ("#1f6f5c", "#b3401f", "#3a5bb8", "#7a4f9a", "#6b6b00")
MARKERS = ("circle", "square", "diamond", "triangle", "circle")


@dataclass(frozen=True)
class Series:
    """One measure: its label and (week, value) points."""

    label: str
    points: tuple[tuple[int, float], ...]


def _marker(shape: str, x: float, y: float, colour: str) -> str:
    if shape == "square":
        return f'<rect x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8" fill="{colour}"/>'
    if shape == "diamond":
        pts = f"{x:.1f},{y - 5:.1f} {x + 5:.1f},{y:.1f} {x:.1f},{y + 5:.1f} {x - 5:.1f},{y:.1f}"
        return f'<polygon points="{pts}" fill="{colour}"/>'
    if shape == "triangle":
        pts = f"{x:.1f},{y - 5:.1f} {x + 5:.1f},{y + 4:.1f} {x - 5:.1f},{y + 4:.1f}"
        return f'<polygon points="{pts}" fill="{colour}"/>'
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}"/>'


def line_chart(
    series: list[Series], *, title: str, low: float = 0, high: float = 10, weeks: int = 8
) -> str:
    """An SVG chart of ``series`` against programme week (1..``weeks``, wider if data says so)."""
    last = max([weeks, *(w for s in series for w, _ in s.points)])
    span_x = WIDTH - LEFT - RIGHT
    span_y = HEIGHT - TOP - BOTTOM

    def x_of(week: int) -> float:
        return LEFT + (week - 1) * span_x / max(1, last - 1)

    def y_of(value: float) -> float:
        clamped = min(max(value, low), high)
        return TOP + (high - clamped) * span_y / (high - low)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'class="chart" aria-labelledby="chart-title">',
        f'<title id="chart-title">{escape(title)}</title>',
        f'<rect x="{LEFT}" y="{TOP}" width="{span_x}" height="{span_y}" fill="#fff" '
        'stroke="#d8dce3"/>',
    ]
    step = 2 if high - low > 5 else 1
    value = low
    while value <= high:
        y = y_of(value)
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#eef0f3"/>'
            f'<text x="{LEFT - 8}" y="{y + 4:.1f}" text-anchor="end" font-size="12" '
            f'fill="#5a6478">{value:g}</text>'
        )
        value += step
    for week in range(1, last + 1):
        parts.append(
            f'<text x="{x_of(week):.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" '
            f'font-size="12" fill="#5a6478">{week}</text>'
        )
    parts.append(
        f'<text x="{LEFT + span_x / 2:.1f}" y="{HEIGHT - 6}" text-anchor="middle" '
        'font-size="12" fill="#5a6478">week</text>'
    )
    for index, one in enumerate(series):
        colour = PALETTE[index % len(PALETTE)]
        shape = MARKERS[index % len(MARKERS)]
        points = sorted(one.points)
        if len(points) > 1:
            path = " ".join(f"{x_of(w):.1f},{y_of(v):.1f}" for w, v in points)
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2.5"/>'
            )
        parts.extend(_marker(shape, x_of(w), y_of(v), colour) for w, v in points)
    parts.append("</svg>")
    return "".join(parts)


def legend(series: list[Series]) -> list[tuple[str, str, str]]:
    """(label, colour, marker) per series, for the key under the chart."""
    return [
        (s.label, PALETTE[i % len(PALETTE)], MARKERS[i % len(MARKERS)])
        for i, s in enumerate(series)
    ]
