"""The report's files: CSV (one row per cell and measure), JSON, and a FHIR R4 `MeasureReport`.

Nothing in them identifies a member: no ids, no names, no dates finer than a month (the period is
given as months, nothing else is dated; a partial period, one that ends in the current month, also
names the last day it counts). Suppressed values are empty (CSV), null (JSON) or carry the
`data-absent-reason` extension `masked` (FHIR), with `suppressed` set, so a reader never mistakes a
hidden value for a zero.
"""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from typing import Any

from companion.domain import outcomes as o
from companion.domain.drinking import standard_drink_grams
from companion.domain.suppression import MAX_SMALL_CELL
from companion.exports import dictionary

CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "fhir": "application/fhir+json",
}
EXTENSIONS = {"csv": "csv", "json": "json", "fhir": "fhir.json"}

#: Canonical URLs of the report's definition and extensions (URNs: nothing to fetch).
MEASURE_URL = "urn:companion:Measure:aud-program-outcomes"
MEASURE_CODES = "urn:companion:CodeSystem:outcome-measure"
BREAKDOWN_CODES = "urn:companion:CodeSystem:breakdown"
EXT_BASELINE = "urn:companion:StructureDefinition:baseline"
EXT_FOLLOW_UP = "urn:companion:StructureDefinition:follow-up"
EXT_UNITS = "urn:companion:StructureDefinition:denominator-units"
DATA_ABSENT = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
POPULATION_CODES = "http://terminology.hl7.org/CodeSystem/measure-population"

#: The CSV's columns, in order; each is defined in the data dictionary (exports.dictionary).
CSV_COLUMNS = tuple(dictionary.CSV_COLUMNS)


def render(report: o.Report, fmt: str) -> bytes:
    if fmt == "csv":
        return to_csv(report)
    if fmt == "json":
        return to_json(report)
    if fmt == "fhir":
        return to_fhir(report)
    raise ValueError(f"unknown format {fmt}")


def _text(value: Decimal | int | str | None) -> str:
    return "" if value is None else str(value)


def _shape(m: o.MeasureValue) -> dict[str, Any]:
    """One measure in the one shape every format uses: the value, the members it rests on, its
    numerator and denominator (with the denominator's unit), the days a mean rests on, and why it is
    absent. A pooled rate divides days or doses; a share, a mean or a change divides members."""
    scoring = dictionary.BY_CODE[m.name].scoring
    pooled = scoring == dictionary.POOLED
    if m.suppressed or scoring == dictionary.COUNT:
        denominator, denominator_unit = None, None
    elif pooled:
        denominator, denominator_unit = m.units, m.units_of
    else:
        denominator, denominator_unit = m.members, "members"
    has_days = scoring == dictionary.MEAN and m.units is not None
    return {
        "measure": m.name,
        "value": _number(m.value),
        "unit": m.unit,
        "members": m.members,
        "numerator": m.numerator,
        "denominator": denominator,
        "denominator_unit": denominator_unit,
        "days": m.units if has_days else None,
        "days_unit": m.units_of if has_days else None,
        "baseline": _number(m.baseline),
        "follow_up": _number(m.follow_up),
        "suppressed": m.suppressed,
        "status_reason": m.reason,
    }


def to_csv(report: o.Report) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for cell in report.cells:
        for m in cell.measures:
            row = {
                "period_start": str(report.period.start),
                "period_end": str(report.period.end),
                "partial": "true" if report.period.partial else "false",
                "breakdown": cell.breakdown,
                "category": cell.category,
                **_shape(m),
            }
            row["suppressed"] = "true" if m.suppressed else "false"
            writer.writerow([_text(row[c]) for c in CSV_COLUMNS])
    return out.getvalue().encode()


def _number(value: Decimal | int | None) -> int | float | None:
    if value is None or isinstance(value, int):
        return value
    return int(value) if value == value.to_integral_value() else float(value)


def _period(period: o.Period) -> dict[str, Any]:
    """The months, and whether the last one is counted only to date (`partial`, through `through`)."""
    shown: dict[str, Any] = {"start": str(period.start), "end": str(period.end), "partial": period.partial}
    if period.partial:
        shown["through"] = period.days.end.isoformat()
    return shown


def as_dict(report: o.Report) -> dict[str, Any]:
    return {
        "report": "companion.outcomes",
        "version": 2,
        "period": _period(report.period),
        "breakdowns": [b.value for b in report.breakdowns],
        "standard_drink_grams": _number(standard_drink_grams(o.REPORT_COUNTRY)),
        "suppression": {
            "policy": "CMS cell-size policy with complementary suppression",
            "hidden_member_counts": f"1-{MAX_SMALL_CELL}",
        },
        "cells": [
            {
                "breakdown": cell.breakdown,
                "category": cell.category,
                "suppressed": cell.suppressed,
                "status_reason": cell.reason,
                "measures": [_shape(m) for m in cell.measures],
            }
            for cell in report.cells
        ],
        "dictionary": dictionary.as_dict(),
    }


def to_json(report: o.Report) -> bytes:
    return json.dumps(as_dict(report), indent=1).encode()


# --- FHIR ------------------------------------------------------------------------------------------


def _population(code: str, count: int) -> dict[str, Any]:
    return {"code": {"coding": [{"system": POPULATION_CODES, "code": code}]}, "count": count}


def _masked() -> dict[str, Any]:
    return {"extension": [{"url": DATA_ABSENT, "valueCode": "masked"}]}


def _scored(m: o.MeasureValue, cell_members: int | None) -> dict[str, Any]:
    """population / measureScore / extensions of one measure in one cell (a group or a stratum)."""
    if m.suppressed or m.members is None:
        return {"measureScore": _masked()}
    populations = []
    if cell_members is not None:
        populations.append(_population("initial-population", cell_members))
    populations.append(_population("denominator", m.members))
    if m.numerator is not None:
        populations.append(_population("numerator", m.numerator))
    part: dict[str, Any] = {"population": populations}
    if m.value is not None:
        part["measureScore"] = {"value": _number(m.value), "unit": m.unit}
    extensions = []
    if m.units is not None:
        extensions.append({"url": EXT_UNITS, "valueQuantity": {"value": m.units, "unit": m.units_of}})
    if m.baseline is not None:
        extensions.append({"url": EXT_BASELINE, "valueDecimal": _number(m.baseline)})
    if m.follow_up is not None:
        extensions.append({"url": EXT_FOLLOW_UP, "valueDecimal": _number(m.follow_up)})
    if extensions:
        part["extension"] = extensions
    return part


def as_measure_report(report: o.Report) -> dict[str, Any]:
    """A summary MeasureReport: a group per measure, a stratifier per breakdown."""
    total = report.cells[0]
    members = next(m for m in total.measures if m.name == "members")
    groups = []
    for index, measure in enumerate(total.measures):
        group: dict[str, Any] = {
            "code": {"coding": [{"system": MEASURE_CODES, "code": measure.name}], "text": measure.name},
            **_scored(measure, members.members),
        }
        stratifiers = []
        for breakdown in report.breakdowns:
            strata = []
            for cell in report.cells:
                if cell.breakdown != breakdown.value:
                    continue
                named = {m.name: m for m in cell.measures}
                if measure.name not in named:
                    continue  # not given for this breakdown (retention per program month)
                cell_members = named["members"].members
                strata.append(
                    {"value": {"text": cell.category}, **_scored(named[measure.name], cell_members)}
                )
            if strata:
                stratifiers.append(
                    {
                        "code": [
                            {
                                "coding": [{"system": BREAKDOWN_CODES, "code": breakdown.value}],
                                "text": breakdown.value,
                            }
                        ],
                        "stratum": strata,
                    }
                )
        if stratifiers:
            group["stratifier"] = stratifiers
        group["id"] = f"m{index}"
        groups.append(group)
    return {
        "resourceType": "MeasureReport",
        "status": "complete",
        "type": "summary",
        "measure": MEASURE_URL,
        "period": {"start": str(report.period.start), "end": str(report.period.end)},
        "group": groups,
    }


def to_fhir(report: o.Report) -> bytes:
    """The MeasureReport, validated by the FHIR R4B models (MeasureReport is the same in R4)."""
    from fhir.resources.R4B.measurereport import MeasureReport

    resource = MeasureReport.model_validate(as_measure_report(report))
    return resource.model_dump_json(exclude_none=True).encode()
