"""Server-rendered SVG charts of the dashboard's monthly trends (no JavaScript).

Each chart is one inline ``<svg>`` that scales to its box (``viewBox``, ``width="100%"``), with a
``<title>`` and a ``<desc>`` named by ``aria-labelledby``, a ``<title>`` per bar or point (the
number on hover), and presentation attributes only (WeasyPrint draws the same markup in the PDF).
The numbers are also given as a table by the templates."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

from markupsafe import Markup, escape

W, H = 480, 210
LEFT, RIGHT, TOP_, BOTTOM = 40, 6, 30, 40
FONT = 15


@dataclass(frozen=True)
class Series:
    name: str
    values: list[int | None]
    color: str


def nice_max(value: float) -> int:
    """The smallest of 1, 2, 5 × 10^k (k ≥ 1) at or above ``value``; below 10 the next even
    number, at least 2, so that the axis's middle line (half the top) is a whole number."""
    if value <= 8:
        return max(2, 2 * math.ceil(value / 2))
    k = 10
    while True:
        for m in (1, 2, 5):
            if m * k >= value:
                return m * k
        k *= 10


def month_labels(months: list[date]) -> list[str]:
    return [f"{m.year}年{m.month}月" for m in months]


def _axis(months: list[date], top: int, unit: str) -> list[str]:
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP_ - BOTTOM
    out = []
    for frac in (0, 0.5, 1):
        y = TOP_ + plot_h * (1 - frac)
        value = top * frac
        text = f"{value:g}{unit}"
        out.append(f'<line x1="{LEFT}" y1="{y:g}" x2="{W - RIGHT}" y2="{y:g}" stroke="#ddd" '
                   f'stroke-width="1"/>')
        out.append(f'<text x="{LEFT - 4}" y="{y + 4:g}" text-anchor="end" font-size="{FONT - 1}" '
                   f'fill="#555">{text}</text>')
    step = plot_w / len(months)
    for i, m in enumerate(months):
        x = LEFT + step * (i + 0.5)
        out.append(f'<text x="{x:g}" y="{H - BOTTOM + 17}" text-anchor="middle" '
                   f'font-size="{FONT}" fill="#333">{m.month}</text>')
        if i == 0 or m.month == 1:
            out.append(f'<text x="{x:g}" y="{H - BOTTOM + 33}" text-anchor="middle" '
                       f'font-size="{FONT - 2}" fill="#777">{m.year}</text>')
    return out


def _legend(series: list[Series]) -> list[str]:
    out, x = [], LEFT
    for s in series:
        out.append(f'<rect x="{x}" y="5" width="13" height="13" fill="{s.color}"/>')
        out.append(f'<text x="{x + 17}" y="17" font-size="{FONT}" fill="#333">'
                   f'{escape(s.name)}</text>')
        x += 17 + FONT * len(s.name) + 14
    return out


def _svg(chart_id: str, title: str, desc: str, body: list[str]) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {W} {H}" width="100%" role="img" '
        f'xmlns="http://www.w3.org/2000/svg" aria-labelledby="{chart_id}-t {chart_id}-d" '
        f'font-family="\'Noto Sans CJK SC\', \'Noto Sans SC\', sans-serif">'
        f'<title id="{chart_id}-t">{escape(title)}</title>'
        f'<desc id="{chart_id}-d">{escape(desc)}</desc>' + "".join(body) + "</svg>")


def bars(chart_id: str, title: str, months: list[date], series: list[Series],
         unit: str = "", top: int | None = None) -> Markup:
    """Stacked bars, one per month (``series`` bottom first). ``top``: the axis maximum (the
    sum of the stack rounded up by :func:`nice_max` unless given, e.g. 100 for percentages).
    A month whose values are all None draws no bar."""
    n = len(months)
    sums = [sum(s.values[i] or 0 for s in series) for i in range(n)]
    top = top or nice_max(max(sums, default=0))
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP_ - BOTTOM
    step = plot_w / n
    width = step * 0.64
    body = _axis(months, top, unit) + _legend(series)
    labels = month_labels(months)
    for i in range(n):
        base = 0.0
        x = LEFT + step * i + (step - width) / 2
        for s in series:
            v = s.values[i]
            if not v:
                continue
            h = plot_h * v / top
            y = TOP_ + plot_h - base - h
            body.append(f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" '
                        f'height="{h:.1f}" fill="{s.color}"><title>{labels[i]} '
                        f'{escape(s.name)} {v}{unit}</title></rect>')
            base += h
    desc = "；".join(f"{labels[i]} " + "，".join(
        f"{s.name} {'—' if s.values[i] is None else s.values[i]}{unit}" for s in series)
        for i in range(n))
    return _svg(chart_id, title, desc, body)


def lines(chart_id: str, title: str, months: list[date], series: list[Series],
          unit: str = "") -> Markup:
    """One line with a point per month for each series."""
    n = len(months)
    top = nice_max(max((v or 0 for s in series for v in s.values), default=0))
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP_ - BOTTOM
    step = plot_w / n
    body = _axis(months, top, unit) + _legend(series)
    labels = month_labels(months)
    for s in series:
        points = [(LEFT + step * (i + 0.5), TOP_ + plot_h * (1 - (v or 0) / top))
                  for i, v in enumerate(s.values)]
        body.append(f'<polyline fill="none" stroke="{s.color}" stroke-width="2" points="'
                    + " ".join(f"{x:.1f},{y:.1f}" for x, y in points) + '"/>')
        for i, (x, y) in enumerate(points):
            body.append(f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="3.5" '
                        f'fill="{s.color}"><title>{labels[i]} {escape(s.name)} '
                        f'{s.values[i] or 0}{unit}</title></circle>')
    desc = "；".join(f"{labels[i]} " + "，".join(f"{s.name} {s.values[i] or 0}{unit}"
                                                for s in series) for i in range(n))
    return _svg(chart_id, title, desc, body)


#: Colours of the charts (on white, in print too).
CONTACT_COLORS = ("#1f5f99", "#8cbde6")
REQUEST_COLORS = ("#c05621", "#1f5f99")
LEVEL_COLORS = ("#276749", "#68b37e", "#d69e2e", "#c53030")


def trend_charts(trend, prefix: str = "c") -> dict[str, Markup]:
    """The dashboard's three charts of a :class:`~portal.blueprints.ledgers.dashboard.Trend`."""
    from portal.blueprints.ledgers.dashboard import LEVELS

    months = trend.months
    others = [c - v for c, v in zip(trend.contacts, trend.visits, strict=True)]
    shares = []
    for row in trend.closed_by_level:
        total = sum(row)
        shares.append([round(100 * x / total) if total else None for x in row])
    # the rounded shares of a month add up to 100: the largest takes the difference
    for row in shares:
        if row[0] is not None:
            k = max(range(len(row)), key=lambda j: row[j])
            row[k] += 100 - sum(row)
    return {
        "contacts": bars(f"{prefix}-contacts", "每月走访服务群众（次）", months, [
            Series("上门", trend.visits, CONTACT_COLORS[0]),
            Series("电话/微信等", others, CONTACT_COLORS[1])]),
        "requests": lines(f"{prefix}-requests", "每月收集与办结的问题诉求（项）", months, [
            Series("收集", trend.collected, REQUEST_COLORS[0]),
            Series("办结", trend.closed, REQUEST_COLORS[1])]),
        "levels": bars(f"{prefix}-levels", "每月办结诉求的办结层级（%）", months, [
            Series(f"{name}", [row[k] for row in shares], LEVEL_COLORS[k])
            for k, name in enumerate(LEVELS)], unit="%", top=100),
    }
