"""The inline SVG charts: what is drawn for a day with a value, a zero, and no record."""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal

from companion.dashboard import charts

DAYS = [date(2026, 11, 1) + timedelta(days=n) for n in range(5)]


def rects(svg: str) -> list[tuple[str, float]]:
    return [(cls, float(h)) for cls, h in re.findall(r'<rect class="([^"]+)"[^>]*height="([\d.]+)"', svg)]


def test_bars_skip_missing_days_mark_zeros_and_highlight():
    svg = str(
        charts.bars(
            "drinks",
            DAYS,
            [Decimal("2"), None, Decimal("0"), Decimal("6"), None],
            unit="drinks",
            highlight=[False, False, False, True, False],
            threshold=Decimal("4"),
            threshold_label="heavy ≥ 4",
        )
    )
    drawn = rects(svg)
    assert [cls for cls, _ in drawn] == ["bar", "bar zero", "bar hi"]  # two days not logged: nothing
    assert drawn[2][1] == 3 * drawn[0][1]  # to scale: 6 is three times 2
    assert drawn[1][1] == 2  # a zero is a thin mark
    assert 'class="threshold"' in svg and "heavy ≥ 4" in svg
    assert "<title>2026-11-04: 6 drinks</title>" in svg


def test_labels_are_escaped():
    svg = str(charts.bars("<script>", DAYS, [1, 1, 1, 1, 1], unit="<b>"))
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "<b>" not in svg


def test_dots_join_consecutive_days_only():
    svg = str(charts.dots("cravings", DAYS, [3, 4, None, 5, None], unit="/ 10", y_max=10))
    assert svg.count("<circle") == 3
    assert svg.count("<polyline") == 1  # days 1-2 joined; day 4 stands alone


def test_stacked_counts_by_severity():
    svg = str(
        charts.stacked("effects", DAYS, [("mild", [1, 0, 0, 2, 0]), ("severe", [1, 0, 0, 0, 0])], unit="x")
    )
    assert [cls for cls, _ in rects(svg)] == ["bar mild", "bar severe", "bar mild"]


def test_ticks_are_round():
    assert charts._nice(6.6) == (8, [0, 2, 4, 6, 8])
    assert charts._nice(100)[1] == [0, 25, 50, 75, 100]


def test_sparkline_breaks_on_missing_days():
    svg = str(charts.sparkline([1, 2, None, 3, None, 1, 1]))
    assert svg.count("<polyline") == 2 and svg.count("<circle") == 1
