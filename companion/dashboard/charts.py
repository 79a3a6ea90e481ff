"""Charts as inline SVG, drawn on the server: no script, nothing fetched, readable without JavaScript.

Each function takes one series per local day (oldest first; None is a day with nothing recorded,
which draws nothing rather than a zero) and returns safe markup. Every bar and dot carries a <title>,
so hovering shows the day and its value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from markupsafe import Markup, escape

Number = int | float | Decimal

WIDTH, HEIGHT = 640, 160
LEFT, RIGHT, TOP, BOTTOM = 36, 8, 8, 20


def _f(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class _Frame:
    """Maps day index and value to SVG coordinates."""

    n: int
    y_max: float

    @property
    def step(self) -> float:
        return (WIDTH - LEFT - RIGHT) / max(self.n, 1)

    def x(self, i: int) -> float:
        return LEFT + i * self.step

    def y(self, value: float) -> float:
        return TOP + (HEIGHT - TOP - BOTTOM) * (1 - min(value, self.y_max) / self.y_max)


def _open(title: str, css: str) -> list[str]:
    return [
        f'<svg class="chart {css}" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]


def _axes(frame: _Frame, days: Sequence[date], ticks: Sequence[float], fmt: str = "{:g}") -> list[str]:
    parts = []
    for t in ticks:
        y = _f(frame.y(t))
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y}" y2="{y}"/>')
        parts.append(f'<text class="tick" x="{LEFT - 4}" y="{y}" text-anchor="end">{fmt.format(t)}</text>')
    if days:
        for i in sorted({0, len(days) // 2, len(days) - 1}):
            anchor = "start" if i == 0 else "end" if i == len(days) - 1 else "middle"
            x = frame.x(i) + (frame.step if anchor == "end" else frame.step / 2 if anchor == "middle" else 0)
            parts.append(
                f'<text class="tick" x="{_f(x)}" y="{HEIGHT - 4}" text-anchor="{anchor}">'
                f"{days[i].strftime('%b %d')}</text>"
            )
    return parts


def _nice(y_max: float, count: int = 4) -> tuple[float, list[float]]:
    """A top at or above `y_max` and round ticks up to it (1, 2, 2.5 or 5 times a power of ten)."""
    raw = max(y_max, 1e-9) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    top = step * math.ceil(y_max / step - 1e-9)
    return top, [round(step * k, 6) for k in range(round(top / step) + 1)]


def _close(parts: list[str]) -> Markup:
    parts.append("</svg>")
    return Markup("".join(parts))  # built from numbers and escaped labels only


def bars(
    title: str,
    days: Sequence[date],
    values: Sequence[Number | None],
    *,
    unit: str,
    highlight: Sequence[bool] | None = None,
    threshold: Number | None = None,
    threshold_label: str = "",
    y_max: Number | None = None,
    css: str = "",
) -> Markup:
    """One bar per day; `highlight` marks bars (heavy days); `threshold` draws a dashed line."""
    present = [float(v) for v in values if v is not None]
    top, ticks = _nice(float(y_max) if y_max is not None else max([*present, float(threshold or 0), 1.0]))
    frame = _Frame(len(days), top)
    parts = [*_open(title, css), *_axes(frame, days, ticks)]
    width = max(frame.step * 0.8, 1)
    for i, (day, value) in enumerate(zip(days, values, strict=True)):
        if value is None:
            continue
        cls = "bar hi" if highlight and highlight[i] else "bar"
        y = frame.y(float(value))
        if value == 0:  # recorded as zero (an alcohol-free day): a mark, unlike a day with no record
            cls, y = "bar zero", frame.y(0) - 2
        parts.append(
            f'<rect class="{cls}" x="{_f(frame.x(i))}" y="{_f(y)}" width="{_f(width)}" '
            f'height="{_f(frame.y(0) - y)}"><title>{day.isoformat()}: {escape(str(value))} {escape(unit)}'
            "</title></rect>"
        )
    if threshold is not None:
        y = _f(frame.y(float(threshold)))
        parts.append(f'<line class="threshold" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y}" y2="{y}"/>')
        parts.append(
            f'<text class="threshold-label" x="{LEFT + 3}" y="{_f(frame.y(float(threshold)) - 4)}">'
            f"{escape(threshold_label)}</text>"
        )
    return _close(parts)


def dots(
    title: str,
    days: Sequence[date],
    values: Sequence[Number | None],
    *,
    unit: str,
    y_max: Number,
    line: bool = True,
    fmt: str = "{:g}",
    css: str = "",
) -> Markup:
    """A dot per recorded day, joined by a line across consecutive recorded days."""
    top, ticks = _nice(float(y_max))
    frame = _Frame(len(days), top)
    parts = [*_open(title, css), *_axes(frame, days, ticks, fmt)]
    points: list[tuple[float, float] | None] = [
        None if v is None else (frame.x(i) + frame.step / 2, frame.y(float(v))) for i, v in enumerate(values)
    ]
    if line:
        run: list[str] = []
        for point in [*points, None]:
            if point is None:
                if len(run) > 1:
                    parts.append(f'<polyline class="line" points="{" ".join(run)}"/>')
                run = []
            else:
                run.append(f"{_f(point[0])},{_f(point[1])}")
    for day, value, point in zip(days, values, points, strict=True):
        if point is not None:
            parts.append(
                f'<circle class="dot" cx="{_f(point[0])}" cy="{_f(point[1])}" r="2.5">'
                f"<title>{day.isoformat()}: {escape(str(value))} {escape(unit)}</title></circle>"
            )
    return _close(parts)


def stacked(
    title: str,
    days: Sequence[date],
    stacks: Sequence[tuple[str, Sequence[int]]],
    *,
    unit: str,
    css: str = "",
) -> Markup:
    """Bars of counts per day, stacked in the order given; each stack's class is its label."""
    totals = [sum(s[1][i] for s in stacks) for i in range(len(days))]
    top, ticks = _nice(max([*totals, 1]), count=min(4, max([*totals, 1])))
    frame = _Frame(len(days), top)
    parts = [*_open(title, css), *_axes(frame, days, ticks)]
    width = max(frame.step * 0.8, 1)
    for i, day in enumerate(days):
        base = 0
        for label, counts in stacks:
            n = counts[i]
            if not n:
                continue
            y0, y1 = frame.y(base), frame.y(base + n)
            parts.append(
                f'<rect class="bar {escape(label)}" x="{_f(frame.x(i))}" y="{_f(y1)}" width="{_f(width)}" '
                f'height="{_f(y0 - y1)}"><title>{day.isoformat()}: {n} {escape(label)} {escape(unit)}'
                "</title></rect>"
            )
            base += n
    return _close(parts)


def sparkline(values: Sequence[Number | None], *, width: int = 120, height: int = 24) -> Markup:
    """A small trend line (drinks per day); gaps where a day was not logged."""
    present = [float(v) for v in values if v is not None]
    top = max([*present, 1.0])
    step = width / max(len(values) - 1, 1)
    parts = [
        f'<svg class="sparkline" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="drinks per day, last {len(values)} days" xmlns="http://www.w3.org/2000/svg">'
    ]
    run: list[str] = []
    for i, value in enumerate([*values, None]):
        if value is None:
            if len(run) > 1:
                parts.append(f'<polyline points="{" ".join(run)}"/>')
            elif run:
                x, y = run[0].split(",")
                parts.append(f'<circle cx="{x}" cy="{y}" r="1.2"/>')
            run = []
        else:
            run.append(f"{_f(i * step)},{_f(height - 2 - (height - 4) * float(value) / top)}")
    return _close(parts)
