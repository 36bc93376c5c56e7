"""Small inline SVG charts for the self-contained report (no JavaScript library, no network)."""

from __future__ import annotations

import math
from html import escape

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")


def line_chart(series: dict[str, list[tuple[float, float]]], *, title: str, x_label: str, y_label: str,
               highlight_x: float | None = None, width: int = 560, height: int = 260,
               y_range: tuple[float, float] | None = None) -> str:
    """An SVG line chart with one polyline per series (points sorted by x); non-finite y values break a line."""
    points = [(x, y) for values in series.values() for x, y in values if math.isfinite(y)]
    if not points:
        return f'<div class="chart-empty">{escape(title)}: no data</div>'
    # Several series: the legend gets its own column on the right instead of covering the lines.
    left, right, top, bottom = 56, (150 if len(series) > 1 else 16), 28, 40
    xs = [p[0] for p in points]
    x_min, x_max = min(xs), max(xs)
    if y_range is None:
        ys = [p[1] for p in points]
        y_min, y_max = min(ys), max(ys)
        pad = (y_max - y_min) * 0.08 or abs(y_max) * 0.1 or 1.0
        y_min, y_max = y_min - pad, y_max + pad
    else:
        y_min, y_max = y_range
    x_span = (x_max - x_min) or 1.0
    y_span = (y_max - y_min) or 1.0

    def sx(x: float) -> float:
        return left + (x - x_min) / x_span * (width - left - right)

    def sy(y: float) -> float:
        return height - bottom - (y - y_min) / y_span * (height - top - bottom)

    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
             f'role="img" aria-label="{escape(title)}">',
             f'<text x="{width / 2}" y="16" text-anchor="middle" class="chart-title">{escape(title)}</text>',
             f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" class="axis"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" class="axis"/>']
    for i in range(5):
        value = y_min + y_span * i / 4
        parts.append(f'<text x="{left - 6}" y="{sy(value) + 4:.1f}" text-anchor="end" class="tick">{value:.3g}</text>')
        parts.append(f'<line x1="{left}" y1="{sy(value):.1f}" x2="{width - right}" y2="{sy(value):.1f}" class="grid"/>')
    for x in sorted(set(xs))[:: max(1, len(set(xs)) // 10)]:
        parts.append(f'<text x="{sx(x):.1f}" y="{height - bottom + 16}" text-anchor="middle" class="tick">{x:g}</text>')
    parts.append(f'<text x="{width / 2}" y="{height - 6}" text-anchor="middle" class="label">{escape(x_label)}</text>')
    parts.append(f'<text x="14" y="{height / 2}" text-anchor="middle" class="label" '
                 f'transform="rotate(-90 14 {height / 2})">{escape(y_label)}</text>')
    if highlight_x is not None:
        parts.append(f'<line x1="{sx(highlight_x):.1f}" y1="{top}" x2="{sx(highlight_x):.1f}" '
                     f'y2="{height - bottom}" class="highlight"/>')
    for values, colour in zip(series.values(), PALETTE * 4, strict=False):
        for segment in _segments(sorted(values)):
            coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in segment)
            parts.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2"/>')
            if len(segment) <= 40:
                parts.extend(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{colour}"/>' for x, y in segment)
    legend_x = width - right + 12 if len(series) > 1 else left + 8
    for index, (name, colour) in enumerate(zip(series, PALETTE * 4, strict=False)):
        y = top + 8 + 16 * index
        parts.append(f'<rect x="{legend_x}" y="{y - 8}" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{legend_x + 14}" y="{y + 1}" class="legend">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(values: list[tuple[float, float]], *, title: str, x_label: str, y_label: str,
              width: int = 560, height: int = 220) -> str:
    """Vertical bars (x categories in order) with their values; used for seconds per epoch."""
    if not values:
        return f'<div class="chart-empty">{escape(title)}: no data</div>'
    left, right, top, bottom = 56, 16, 28, 40
    y_max = max(v for _, v in values) * 1.1 or 1.0
    slot = (width - left - right) / len(values)
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
             f'role="img" aria-label="{escape(title)}">',
             f'<text x="{width / 2}" y="16" text-anchor="middle" class="chart-title">{escape(title)}</text>',
             f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" class="axis"/>']
    for index, (x, value) in enumerate(values):
        bar_height = value / y_max * (height - top - bottom)
        x0 = left + index * slot + slot * 0.15
        parts.append(f'<rect x="{x0:.1f}" y="{height - bottom - bar_height:.1f}" width="{slot * 0.7:.1f}" '
                     f'height="{bar_height:.1f}" class="bar"><title>{x:g}: {value:.1f}</title></rect>')
        if len(values) <= 30:
            parts.append(f'<text x="{x0 + slot * 0.35:.1f}" y="{height - bottom + 16}" text-anchor="middle" '
                         f'class="tick">{x:g}</text>')
    parts.append(f'<text x="{left - 6}" y="{top + 4}" text-anchor="end" class="tick">{y_max:.3g}</text>')
    parts.append(f'<text x="{width / 2}" y="{height - 6}" text-anchor="middle" class="label">{escape(x_label)}</text>')
    parts.append(f'<text x="14" y="{height / 2}" text-anchor="middle" class="label" '
                 f'transform="rotate(-90 14 {height / 2})">{escape(y_label)}</text></svg>')
    return "".join(parts)


def _segments(values: list[tuple[float, float]]) -> list[list[tuple[float, float]]]:
    segments: list[list[tuple[float, float]]] = [[]]
    for x, y in values:
        if math.isfinite(y):
            segments[-1].append((x, y))
        elif segments[-1]:
            segments.append([])
    return [s for s in segments if s]
