"""The report's files: CSV (one row per cell and measure), JSON, and a FHIR R4 Bundle (a `collection`
of the program's Organization, a `Measure` per measure and a summary `MeasureReport` per measure).

Nothing in them identifies a member: no ids, no names, no dates finer than a month (the period is
given as months, nothing else is dated but the FHIR report's build time; a partial period, one that
ends in the current month, also names the last day it counts). Suppressed values are empty (CSV),
null (JSON) or carry the `data-absent-reason` extension `masked` (FHIR), with `suppressed` set and
the reason given, so a reader never mistakes a hidden value for a zero.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import UTC, datetime
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
EXT_DAYS = "urn:companion:StructureDefinition:days"
EXT_SUPPRESSION = "urn:companion:StructureDefinition:suppression-reason"
DATA_ABSENT = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
POPULATION_CODES = "http://terminology.hl7.org/CodeSystem/measure-population"

#: The CSV's columns, in order; each is defined in the data dictionary (exports.dictionary).
CSV_COLUMNS = tuple(dictionary.CSV_COLUMNS)


def render(report: o.Report, fmt: str, *, now: datetime | None = None) -> bytes:
    if fmt == "csv":
        return to_csv(report)
    if fmt == "json":
        return to_json(report)
    if fmt == "fhir":
        return to_fhir(report, now=now)
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

UCUM = "http://unitsofmeasure.org"
SCORING_CODES = "http://terminology.hl7.org/CodeSystem/measure-scoring"
IMPROVEMENT_CODES = "http://terminology.hl7.org/CodeSystem/measure-improvement-notation"
DATA_ABSENT_CODES = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
#: Our scoring (dictionary) as FHIR's measure-scoring: a mean or a change is a continuous variable.
FHIR_SCORING = {
    dictionary.COUNT: "cohort",
    dictionary.SHARE: "proportion",
    dictionary.POOLED: "proportion",
    dictionary.MEAN: "continuous-variable",
    dictionary.CHANGE: "continuous-variable",
}
#: The program, the reporter of every MeasureReport.
PROGRAM = "Companion medication-assisted recovery program"
_NAMESPACE = uuid.UUID("6d1f0c8e-4f5a-5b7e-9a61-2d3c4b5a6978")


def _urn(*parts: str) -> str:
    """A stable urn:uuid for a bundle entry: the same report gives the same ids."""
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, '/'.join(parts))}"


def _coded(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding], "text": display or code}


def _population(code: str, count: int) -> dict[str, Any]:
    return {"code": _coded(POPULATION_CODES, code), "count": count}


def _absent(m: o.MeasureValue) -> dict[str, Any]:
    """A score that is not there: masked (with our reason) when suppressed, else not applicable."""
    if m.suppressed:
        return {
            "extension": [
                {"url": DATA_ABSENT, "valueCode": "masked"},
                {"url": EXT_SUPPRESSION, "valueCode": m.reason},
            ]
        }
    return {"extension": [{"url": DATA_ABSENT, "valueCode": "not-applicable"}]}


def _scored(m: o.MeasureValue, cell_members: int | None) -> dict[str, Any]:
    """population / measureScore / extensions of one measure in one cell (a group or a stratum)."""
    definition = dictionary.BY_CODE[m.name]
    if m.suppressed or m.members is None:
        return {"measureScore": _absent(m)}
    shape = _shape(m)
    populations = []
    if cell_members is not None:
        populations.append(_population("initial-population", cell_members))
    if shape["denominator"] is not None:
        populations.append(_population("denominator", shape["denominator"]))
    if m.numerator is not None:
        populations.append(_population("numerator", m.numerator))
    part: dict[str, Any] = {"population": populations}
    if m.value is None:
        part["measureScore"] = _absent(m)
    else:
        part["measureScore"] = {
            "value": _number(m.value),
            "unit": definition.unit,
            "system": UCUM,
            "code": definition.ucum,
        }
    extensions = []
    if shape["denominator_unit"] not in (None, "members"):
        extensions.append({"url": EXT_UNITS, "valueString": shape["denominator_unit"]})
    if shape["days"] is not None:
        extensions.append(
            {"url": EXT_DAYS, "valueQuantity": {"value": shape["days"], "unit": shape["days_unit"]}}
        )
    if m.baseline is not None:
        extensions.append({"url": EXT_BASELINE, "valueDecimal": _number(m.baseline)})
    if m.follow_up is not None:
        extensions.append({"url": EXT_FOLLOW_UP, "valueDecimal": _number(m.follow_up)})
    if extensions:
        part["extension"] = extensions
    return part


def _criteria(text: str) -> dict[str, Any]:
    """A population's or stratifier's criteria, in words (the SQL is the computable definition)."""
    return {"language": "text/plain", "expression": text}


def measure_url(code: str) -> str:
    return f"{MEASURE_URL}:{code}"


def as_measure(definition: dictionary.MeasureDefinition) -> dict[str, Any]:
    """The Measure a report cites: the dictionary's definition, scoring, improvement and populations."""
    described = [("initial-population", "The row's members (see the members measure).")]
    if definition.scoring != dictionary.COUNT:
        described.append(("denominator", definition.denominator))
    if definition.numerator:
        described.append(("numerator", definition.numerator))
    populations = [
        {"code": _coded(POPULATION_CODES, code), "criteria": _criteria(text)} for code, text in described
    ]
    measure: dict[str, Any] = {
        "resourceType": "Measure",
        "id": definition.code.replace("_", "-"),
        "url": measure_url(definition.code),
        "name": "".join(part.title() for part in definition.code.split("_")),
        "title": definition.name,
        "status": "active",
        "publisher": PROGRAM,
        "description": definition.definition,
        "scoring": _coded(SCORING_CODES, FHIR_SCORING[definition.scoring]),
        "group": [
            {
                "code": _coded(MEASURE_CODES, definition.code, definition.name),
                "description": f"{definition.definition} Windows: {', '.join(definition.windows)}.",
                "population": populations,
                "stratifier": [
                    {
                        "code": _coded(BREAKDOWN_CODES, b.value),
                        "criteria": _criteria(f"The member's {b.value} category."),
                    }
                    for b in o.Breakdown
                ],
            }
        ],
    }
    if definition.improvement:
        measure["improvementNotation"] = _coded(IMPROVEMENT_CODES, definition.improvement)
    return measure


def _stratum_value(breakdown: str, category: str) -> dict[str, Any]:
    return _coded(f"{BREAKDOWN_CODES}:{breakdown}", category)


def as_measure_reports(report: o.Report, *, now: datetime, reporter: str) -> list[dict[str, Any]]:
    """A summary MeasureReport per measure: the total as its group's score, a stratifier per breakdown
    with a coded stratum per category."""
    total = report.cells[0]
    members = next(m for m in total.measures if m.name == "members")
    reports = []
    for measure in total.measures:
        definition = dictionary.BY_CODE[measure.name]
        group: dict[str, Any] = {
            "code": _coded(MEASURE_CODES, measure.name, definition.name),
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
                    {
                        "value": _stratum_value(breakdown.value, cell.category),
                        **_scored(named[measure.name], cell_members),
                    }
                )
            if strata:
                stratifiers.append({"code": [_coded(BREAKDOWN_CODES, breakdown.value)], "stratum": strata})
        if stratifiers:
            group["stratifier"] = stratifiers
        resource: dict[str, Any] = {
            "resourceType": "MeasureReport",
            "id": f"report-{measure.name.replace('_', '-')}",
            "status": "complete",
            "type": "summary",
            "measure": measure_url(measure.name),
            "date": now.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "reporter": {"reference": reporter, "display": PROGRAM},
            "period": {"start": str(report.period.start), "end": _fhir_period_end(report.period)},
            "group": [group],
        }
        if definition.improvement:
            resource["improvementNotation"] = _coded(IMPROVEMENT_CODES, definition.improvement)
        reports.append(resource)
    return reports


def _fhir_period_end(period: o.Period) -> str:
    """The last month, or the last day counted when the month is partial."""
    return period.days.end.isoformat() if period.partial else str(period.end)


def as_bundle(report: o.Report, *, now: datetime) -> dict[str, Any]:
    """A `collection` Bundle: the program (Organization), the Measures the reports cite, and the
    MeasureReports. Entries are referenced by their stable urn:uuid fullUrls."""
    organization_url = _urn("Organization", "program")
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": organization_url,
            "resource": {"resourceType": "Organization", "id": "program", "active": True, "name": PROGRAM},
        }
    ]
    published = [m.name for m in report.cells[0].measures]
    for code in published:
        measure = as_measure(dictionary.BY_CODE[code])
        entries.append({"fullUrl": _urn("Measure", code), "resource": measure})
    for resource in as_measure_reports(report, now=now, reporter=organization_url):
        entries.append({"fullUrl": _urn("MeasureReport", resource["id"]), "resource": resource})
    return {
        "resourceType": "Bundle",
        "id": "outcomes",
        "type": "collection",
        "timestamp": now.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "entry": entries,
    }


def to_fhir(report: o.Report, *, now: datetime | None = None) -> bytes:
    """The Bundle, validated by the FHIR R4B models (Bundle, Measure and MeasureReport as in R4)."""
    from fhir.resources.R4B.bundle import Bundle

    resource = Bundle.model_validate(as_bundle(report, now=now or datetime.now(UTC)))
    return resource.model_dump_json(exclude_none=True).encode()
