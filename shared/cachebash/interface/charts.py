"""Usage charts as inline SVG, drawn on the server.

Inline SVG needs no chart library, no script and no stylesheet, so the console's Usage page
stays one HTML document that renders on a phone with scripts blocked and under a strict
content security policy. Every chart scales to its container (`viewBox`, `width="100%"`);
the viewBox is about a phone's width so 11-unit text stays legible at 390 px and grows on
a desk. Text uses `currentColor`, and the bar colours are mid-tones, so the charts read on
light and dark pages alike. Each bar carries a `<title>`, the browser's own tooltip (and
what a screen reader announces), and the chart as a whole is `role="img"` with a label.

Labels are user data (program names, model names): everything from data is escaped.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any
from xml.sax.saxutils import escape

WIDTH = 400
HEIGHT = 240
PALETTE = ("#4c8fe0", "#e59a33", "#3fa66a", "#d9534f", "#9a6fd6", "#2fa5a5")
FAILED_COLOUR = "#d9534f"
DONE_COLOUR = "#3fa66a"
_LEFT, _RIGHT, _BOTTOM = 48, 8, 26
_MAX_X_TICKS = 6
_HBAR_ROW, _HBAR_LABEL = 24, 118
_HBAR_ROWS = 10
# Characters XML 1.0 forbids even when escaped (most control characters); a name holding one
# would otherwise make the whole page invalid.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

Formatter = Callable[[float], str]


def text(value: object) -> str:
    """Data as XML text or attribute content: escaped, quotes included, forbidden characters dropped."""
    return escape(_NOT_XML.sub("", str(value)), {'"': "&quot;", "'": "&#39;"})


def clip(label: str, limit: int) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _number(value: float) -> float:
    """Negative, NaN or infinite figures (bad agent reports) draw as nothing rather than breaking the scale."""
    return value if isinstance(value, int | float) and math.isfinite(value) and value > 0 else 0.0


# ---------------------------------------------------------------------------- formats


def compact(value: float) -> str:
    """Short figures for ticks: 950, 12.5k, 3.2M."""
    for bound, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= bound:
            return f"{value / bound:.1f}".rstrip("0").rstrip(".") + suffix
    return f"{value:.2f}".rstrip("0").rstrip(".") if value % 1 else f"{value:.0f}"


def dollars(value: float) -> str:
    """Dollars with the precision small amounts need: $0.0042, $0.12, $1,234.50."""
    if value == 0:
        return "$0"
    return f"${value:.4f}" if abs(value) < 0.01 else f"${value:,.2f}"


def exact(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"


def axis_dollars(value: float) -> str:
    """Gridline dollars: as few digits as the step needs ($0, $0.025, $1.5, $2k)."""
    if value >= 1000:
        return "$" + compact(value)
    return "$" + (f"{value:.6f}".rstrip("0").rstrip(".") or "0")


# ---------------------------------------------------------------------------- frame


def _svg(title: str, height: float, body: list[str], label: str | None = None) -> str:
    """The outer element: scales to its container, announced as one image with `label`."""
    aria = text(label or title)
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {_fmt(height)}" width="100%" '
            f'role="img" aria-label="{aria}" preserveAspectRatio="xMidYMid meet" '
            f'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif" font-size="11" '
            f'fill="currentColor">')
    heading = f'<text x="4" y="16" font-size="13" font-weight="600">{text(title)}</text>'
    return "".join([head, f"<title>{aria}</title>", heading, *body, "</svg>"])


def empty(title: str) -> str:
    """The chart with nothing to show yet: same frame, one line of text."""
    note = f'<text x="{WIDTH / 2}" y="66" text-anchor="middle" font-size="13" opacity="0.7">No data yet</text>'
    return _svg(title, 100, [note], f"{title}: no data yet")


def _fmt(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def nice_step(top: float, ticks: int = 4, *, whole: bool = False) -> float:
    """A round gridline step (1, 2, 2.5 or 5 times a power of ten) so `ticks` steps cover `top`;
    `whole` keeps counts on whole numbers (no "2.5 tasks" gridline)."""
    raw = top / ticks
    power = 10.0 ** math.floor(math.log10(raw))
    multiples = (1, 2, 5, 10) if whole else (1, 2, 2.5, 5, 10)
    step = next(power * m for m in multiples if power * m >= raw * (1 - 1e-9))
    return max(1.0, step) if whole else step


def _y_axis(top: float, step: float, plot_top: float, plot_bottom: float, fmt: Formatter, unit: str) -> list[str]:
    """Gridlines with their values, and the unit above the axis."""
    parts = []
    count = round(top / step)
    for i in range(count + 1):
        y = plot_bottom - (plot_bottom - plot_top) * i / count
        parts.append(f'<line x1="{_LEFT}" x2="{WIDTH - _RIGHT}" y1="{_fmt(y)}" y2="{_fmt(y)}" stroke="currentColor" '
                     f'stroke-opacity="{0.35 if i == 0 else 0.12}"/>')
        parts.append(f'<text x="{_LEFT - 4}" y="{_fmt(y + 4)}" text-anchor="end" opacity="0.75">'
                     f'{text(fmt(step * i))}</text>')
    if unit:
        parts.append(f'<text x="{_LEFT - 4}" y="{_fmt(plot_top - 8)}" text-anchor="end" opacity="0.75">'
                     f'{text(unit)}</text>')
    return parts


def _x_ticks(labels: Sequence[str], slot: float, y: float) -> list[str]:
    """Every Nth label, so a month of days fits a phone without overlapping."""
    every = max(1, math.ceil(len(labels) / _MAX_X_TICKS))
    return [f'<text x="{_fmt(_LEFT + slot * (i + 0.5))}" y="{_fmt(y)}" text-anchor="middle" opacity="0.75">'
            f'{text(clip(label, 10))}</text>'
            for i, label in enumerate(labels) if i % every == 0]


# ---------------------------------------------------------------------------- charts


def bar_chart(title: str, points: list[tuple[str, float]], *, unit: str = "", money: bool = False) -> str:
    """Vertical bars, one per point, oldest (first) on the left: e.g. cost by day."""
    labels = [label for label, _ in points]
    return stacked_bars(title, labels, [(unit or title, [value for _, value in points])], unit=unit,
                        money=money, legend=False)


def stacked_bars(title: str, labels: list[str], series: list[tuple[str, list[float]]], *, unit: str = "",
                 money: bool = False, colors: Sequence[str] | None = None, legend: bool = True) -> str:
    """Vertical bars, one per label, each stacked from the series in order, with a legend:
    e.g. tasks completed and failed per day, or tokens in and out."""
    if any(len(values) != len(labels) for _, values in series):
        raise ValueError("each series needs one value per label")
    clean = [(name, [_number(v) for v in values]) for name, values in series]
    totals = [sum(values[i] for _, values in clean) for i in range(len(labels))]
    if not labels or max(totals) <= 0:
        return empty(title)
    palette = list(colors or PALETTE)
    plot_top = 48.0 if legend else 40.0
    plot_bottom = HEIGHT - _BOTTOM
    fmt, tip = (axis_dollars, dollars) if money else (compact, exact)
    step = nice_step(max(totals), whole=not money and all(t == int(t) for t in totals))
    top = step * math.ceil(max(totals) / step - 1e-9)
    scale = (plot_bottom - plot_top) / top
    slot = (WIDTH - _LEFT - _RIGHT) / len(labels)
    body = _y_axis(top, step, plot_top, plot_bottom, fmt, unit)
    if legend:
        body += _legend([name for name, _ in clean], palette, 30)
    for i, label in enumerate(labels):
        segments = [(name, values[i], palette[n % len(palette)]) for n, (name, values) in enumerate(clean)]
        body.append(_column(label, segments, _LEFT + slot * i, slot, plot_top, plot_bottom, scale, tip))
    body += _x_ticks(labels, slot, plot_bottom + 15)
    return _svg(title, HEIGHT, body)


def _column(label: str, segments: list[tuple[str, float, str]], x: float, slot: float, plot_top: float,
            plot_bottom: float, scale: float, tip: Formatter) -> str:
    """One bar: a full-height invisible target so the tooltip works on thin bars, then its segments."""
    width = max(1.0, min(slot * 0.72, 36.0))
    left = x + (slot - width) / 2
    if len(segments) == 1:
        tooltip = f"{label}: {tip(segments[0][1])}"
    else:
        tooltip = f"{label}: " + ", ".join(f"{name} {tip(value)}" for name, value, _ in segments)
    parts = [f'<g class="bar"><title>{text(tooltip)}</title>',
             f'<rect class="hit" x="{_fmt(x)}" y="{_fmt(plot_top)}" width="{_fmt(slot)}" '
             f'height="{_fmt(plot_bottom - plot_top)}" fill="transparent"/>']
    base = plot_bottom
    for _, value, colour in segments:
        height = value * scale
        if height > 0:
            base -= height
            parts.append(f'<rect class="seg" x="{_fmt(left)}" y="{_fmt(base)}" width="{_fmt(width)}" '
                         f'height="{_fmt(height)}" fill="{text(colour)}" rx="1"/>')
    return "".join(parts) + "</g>"


def _legend(names: list[str], palette: list[str], y: float) -> list[str]:
    """Swatches and names in one row from the left, as far as the width allows."""
    parts, x = [], float(_LEFT)
    for n, name in enumerate(names):
        shown = clip(name, 24)
        needed = 14 + 6.2 * len(shown) + 12
        if x + needed > WIDTH and n:
            break
        parts.append(f'<g class="legend"><rect x="{_fmt(x)}" y="{_fmt(y - 8)}" width="9" height="9" rx="2" '
                     f'fill="{text(palette[n % len(palette)])}"/><text x="{_fmt(x + 13)}" y="{_fmt(y)}">'
                     f'{text(shown)}</text></g>')
        x += needed
    return parts


def hbar_chart(title: str, points: list[tuple[str, float]], *, money: bool = False) -> str:
    """Horizontal bars, one row per point in the order given, each labelled with its value:
    names read left to right however long the list, e.g. cost by program or by model."""
    rows = [(label, _number(value)) for label, value in points]
    if not rows or max(value for _, value in rows) <= 0:
        return empty(title)
    fmt = dollars if money else exact
    peak = max(value for _, value in rows)
    bar_left, value_room = _HBAR_LABEL + 6, 64
    span = WIDTH - bar_left - value_room
    body = []
    for i, (label, value) in enumerate(rows):
        y = 28 + i * _HBAR_ROW
        width = max(1.0, span * value / peak) if value else 0.0
        body.append(
            f'<g class="bar"><title>{text(f"{label}: {fmt(value)}")}</title>'
            f'<rect class="hit" x="0" y="{_fmt(y)}" width="{WIDTH}" height="{_HBAR_ROW}" fill="transparent"/>'
            f'<text x="{_HBAR_LABEL}" y="{_fmt(y + 16)}" text-anchor="end">{text(clip(label, 18))}</text>'
            f'<rect class="seg" x="{bar_left}" y="{_fmt(y + 5)}" width="{_fmt(width)}" height="{_HBAR_ROW - 10}" '
            f'fill="{PALETTE[0]}" rx="2"/>'
            f'<text x="{_fmt(bar_left + width + 4)}" y="{_fmt(y + 16)}" opacity="0.8">{text(fmt(value))}</text></g>')
    return _svg(title, 28 + len(rows) * _HBAR_ROW + 8, body)


# ---------------------------------------------------------------------------- the Usage page


def usage_charts(summary: dict[str, Any]) -> dict[str, str]:
    """The Usage page's charts from `services.usage.summary`'s result."""
    days = summary.get("days") or []
    labels = [_day_label(str(row.get("day", ""))) for row in days]

    def column(name: str) -> list[float]:
        return [float(row.get(name) or 0) for row in days]

    return {
        "costByDay": bar_chart("Cost by day", list(zip(labels, column("costUsd"), strict=True)), unit="USD",
                               money=True),
        "tokensByDay": stacked_bars("Tokens by day", labels, [("Input", column("tokensIn")),
                                                              ("Output", column("tokensOut"))], unit="tokens"),
        "tasksByDay": stacked_bars("Tasks by day", labels, [("Completed", column("completed")),
                                                            ("Failed", column("failed"))], unit="tasks",
                                   colors=(DONE_COLOUR, FAILED_COLOUR)),
        "costByProgram": hbar_chart("Cost by program", top_costs(summary.get("byProgram") or []), money=True),
        "costByModel": hbar_chart("Cost by model", top_costs(summary.get("byModel") or []), money=True),
    }


def top_costs(groups: list[dict[str, Any]], limit: int = _HBAR_ROWS) -> list[tuple[str, float]]:
    """The costliest groups, the rest folded into one row, so a long tail of programs stays one screen."""
    ranked = sorted(((str(g.get("key", "")), float(g.get("costUsd") or 0)) for g in groups), key=lambda p: -p[1])
    if len(ranked) <= limit:
        return ranked
    rest = ranked[limit - 1:]
    return [*ranked[: limit - 1], (f"{len(rest)} others", sum(cost for _, cost in rest))]


def _day_label(day: str) -> str:
    """`2026-12-01` as `Dec 1`: short enough for ticks, and the window's year is on the page."""
    try:
        parsed = date.fromisoformat(day)
    except ValueError:
        return day
    return f"{parsed:%b} {parsed.day}"
