"""The three files: the same report, no identifiers, no dates finer than a month, FHIR that validates."""

from __future__ import annotations

import csv
import io
import json
import re

from companion.domain import outcomes as o
from companion.exports import dictionary, formats
from tests.domain.test_outcomes import NOW, PERIOD, hand_member

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-", re.I)
DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _report() -> o.Report:
    members = [hand_member() for _ in range(12)] + [hand_member(goal_type="moderate") for _ in range(3)]
    breakdowns = [o.Breakdown.GOAL_TYPE, o.Breakdown.PROGRAM_MONTH]
    totals = o.cohort_totals(members, period=PERIOD, breakdowns=breakdowns, now=NOW)
    return o.build_report(totals, period=PERIOD, breakdowns=breakdowns)


def test_csv_has_a_row_per_cell_and_measure():
    report = _report()
    text = formats.to_csv(report).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == report.row_count
    assert tuple(rows[0]) == formats.CSV_COLUMNS
    pda = next(r for r in rows if (r["breakdown"], r["measure"]) == ("total", "pda"))
    assert (pda["value"], pda["members"], pda["denominator"], pda["denominator_unit"]) == (
        "62.5",
        "15",
        "15",
        "members",
    )
    assert (pda["days"], pda["days_unit"], pda["status_reason"]) == ("120", "logged days", "")
    engagement = next(r for r in rows if (r["breakdown"], r["measure"]) == ("total", "engagement"))
    assert engagement["denominator_unit"] == "days enrolled" and engagement["numerator"] != ""
    hidden = next(r for r in rows if (r["category"], r["measure"]) == ("moderate", "pda"))
    assert (hidden["value"], hidden["members"], hidden["suppressed"]) == ("", "", "true")
    assert hidden["status_reason"] == "small_cell"  # 3 moderate members
    # 12 abstainers are shown, but showing them would reveal the 3 moderates: hidden for their sake
    abstain = next(r for r in rows if (r["category"], r["measure"]) == ("abstain", "members"))
    assert (abstain["suppressed"], abstain["status_reason"]) == ("true", "complementary")
    # Issue 19: the mean PACS at baseline and follow-up (hand_member: 20, then 11), suppressed alike.
    pacs = next(r for r in rows if (r["breakdown"], r["measure"]) == ("total", "pacs_change"))
    assert (pacs["value"], pacs["baseline"], pacs["follow_up"], pacs["members"]) == (
        "-9",
        "20",
        "11",
        "15",
    )
    assert (pacs["unit"], pacs["suppressed"], pacs["status_reason"]) == ("PACS score (0-30)", "false", "")
    hidden = next(r for r in rows if (r["category"], r["measure"]) == ("moderate", "pacs_change"))
    assert (hidden["value"], hidden["baseline"], hidden["follow_up"], hidden["members"]) == ("", "", "", "")
    assert (hidden["suppressed"], hidden["status_reason"]) == ("true", "small_cell")
    assert {r["period_start"] for r in rows} == {"2026-01"}
    assert {r["partial"] for r in rows} == {"false"}
    assert not UUID.search(text) and not DAY.search(text)


def test_json_nulls_what_is_suppressed():
    body = json.loads(formats.to_json(_report()))
    assert body["period"] == {"start": "2026-01", "end": "2026-02", "partial": False}
    moderate = next(c for c in body["cells"] if c["category"] == "moderate")
    assert moderate["suppressed"] and all(m["value"] is None for m in moderate["measures"])
    weekly = next(m for m in body["cells"][0]["measures"] if m["measure"] == "weekly_drinks_change")
    assert (weekly["baseline"], weekly["follow_up"], weekly["value"]) == (12.3, 1.8, -10.5)
    pacs = next(m for m in body["cells"][0]["measures"] if m["measure"] == "pacs_change")
    assert (pacs["baseline"], pacs["follow_up"], pacs["value"], pacs["members"]) == (20, 11, -9, 15)
    hidden = next(m for m in moderate["measures"] if m["measure"] == "pacs_change")
    assert (hidden["baseline"], hidden["follow_up"], hidden["suppressed"]) == (None, None, True)
    raw = formats.to_json(_report()).decode()
    assert not UUID.search(raw) and not DAY.search(raw)


def _bundle(report: o.Report | None = None):
    from fhir.resources.R4B.bundle import Bundle

    raw = formats.to_fhir(report or _report(), now=NOW)
    return raw, Bundle.model_validate_json(raw)


def test_fhir_is_a_bundle_of_the_program_its_measures_and_a_report_per_measure():
    raw, bundle = _bundle()
    assert (bundle.type, bundle.timestamp.isoformat()) == ("collection", "2026-03-15T12:00:00+00:00")
    kinds = [e.resource.get_resource_type() for e in bundle.entry]
    assert kinds.count("Organization") == 1
    assert kinds.count("Measure") == kinds.count("MeasureReport") == len(dictionary.MEASURES)
    full_urls = [e.fullUrl for e in bundle.entry]
    assert len(set(full_urls)) == len(full_urls) and all(u.startswith("urn:uuid:") for u in full_urls)
    # the validator's rules we can check here: every reference and every cited Measure is in the bundle
    measures = {
        e.resource.url: e.resource for e in bundle.entry if e.resource.get_resource_type() == "Measure"
    }
    organization = next(e.fullUrl for e in bundle.entry if e.resource.get_resource_type() == "Organization")
    reports = [e.resource for e in bundle.entry if e.resource.get_resource_type() == "MeasureReport"]
    for report in reports:
        assert report.measure in measures
        assert report.reporter.reference == organization
        assert report.date.isoformat() == "2026-03-15T12:00:00+00:00"
        assert (report.status, report.type, report.period.start) == ("complete", "summary", "2026-01")
        measure = measures[report.measure]
        assert report.group[0].code.coding[0].code == measure.group[0].code.coding[0].code
        if measure.improvementNotation:
            assert report.improvementNotation.coding[0].code in {"increase", "decrease"}
    # no identifiers but the bundle's own entry ids (stable: derived from the measure codes)
    assert not UUID.search(re.sub(r"urn:uuid:[0-9a-f-]{36}", "", raw.decode()))
    assert _bundle()[0] == raw
    by_code = {r.group[0].code.coding[0].code: r for r in reports}
    pda = by_code["pda"].group[0]
    assert (float(pda.measureScore.value), pda.measureScore.system, pda.measureScore.code) == (
        62.5,
        "http://unitsofmeasure.org",
        "%",
    )
    assert by_code["pda"].improvementNotation.coding[0].code == "increase"
    assert by_code["phdd"].improvementNotation.coding[0].code == "decrease"
    weekly = by_code["weekly_drinks_change"].group[0]
    assert (weekly.measureScore.code, float(weekly.measureScore.value)) == ("{drinks}/wk", -10.5)
    assert measures[by_code["weekly_drinks_change"].measure].scoring.coding[0].code == "continuous-variable"
    # Issue 19: the mean PACS at baseline and follow-up ride on the change's score as extensions ...
    pacs = by_code["pacs_change"].group[0]
    assert (pacs.measureScore.code, float(pacs.measureScore.value)) == ("{score}", -9.0)
    means = {e.url: float(e.valueDecimal) for e in pacs.extension}
    assert means == {formats.EXT_BASELINE: 20.0, formats.EXT_FOLLOW_UP: 11.0}
    assert [p.count for p in pacs.population] == [15, 15]  # the row's members, the members with both
    # ... and are masked with it where the cell is small.
    pacs_goal = next(st for st in pacs.stratifier if st.code[0].coding[0].code == "goal_type")
    pacs_moderate = next(st for st in pacs_goal.stratum if st.value.coding[0].code == "moderate")
    assert not pacs_moderate.extension and not pacs_moderate.population
    assert {e.url: e.valueCode for e in pacs_moderate.measureScore.extension} == {
        formats.DATA_ABSENT: "masked",
        formats.EXT_SUPPRESSION: "small_cell",
    }
    goal = next(st for st in pda.stratifier if st.code[0].coding[0].code == "goal_type")
    moderate = next(st for st in goal.stratum if st.value.coding[0].code == "moderate")
    assert moderate.value.coding[0].system == "urn:companion:CodeSystem:breakdown:goal_type"
    codes = {e.url: e.valueCode for e in moderate.measureScore.extension}
    assert codes == {formats.DATA_ABSENT: "masked", formats.EXT_SUPPRESSION: "small_cell"}
    assert not moderate.population
    ucum = {r.group[0].measureScore.code for r in reports if r.group[0].measureScore.value is not None}
    assert ucum <= {"%", "{members}", "{drinks}/d", "{drinks}/wk", "{score}"}


def test_fhir_marks_what_nobody_is_eligible_for_as_not_applicable():
    _, bundle = _bundle()
    report = next(
        e.resource
        for e in bundle.entry
        if e.resource.get_resource_type() == "MeasureReport" and e.resource.measure.endswith("retention_90d")
    )
    extension = report.group[0].measureScore.extension
    assert [(x.url, x.valueCode) for x in extension] == [(formats.DATA_ABSENT, "not-applicable")]


def test_a_partial_period_says_so_and_names_its_last_day():
    period = o.make_period("2026-02", "2026-03", today=NOW.date())  # NOW is 2026-03-15
    assert period.partial and period.days.end.isoformat() == "2026-03-14"
    members = [hand_member() for _ in range(12)]
    report = o.build_report(
        o.cohort_totals(members, period=period, breakdowns=[], now=NOW), period=period, breakdowns=[]
    )
    body = json.loads(formats.to_json(report))
    assert body["period"] == {"start": "2026-02", "end": "2026-03", "partial": True, "through": "2026-03-14"}
    rows = list(csv.DictReader(io.StringIO(formats.to_csv(report).decode())))
    assert {r["partial"] for r in rows} == {"true"}


def test_every_published_measure_and_column_is_in_the_dictionary():
    report = _report()
    published = {m.name for cell in report.cells for m in cell.measures}
    assert published == set(dictionary.BY_CODE)
    assert tuple(dictionary.CSV_COLUMNS) == formats.CSV_COLUMNS
    body = json.loads(formats.to_json(report))
    assert [m["code"] for m in body["dictionary"]["measures"]] == [m.code for m in dictionary.MEASURES]
    for m in body["dictionary"]["measures"]:
        assert set(m["windows"]) <= set(body["dictionary"]["windows"])
        assert m["definition"] and m["denominator"] and m["ucum"]
    change = dictionary.BY_CODE["weekly_drinks_change"]
    assert change.scoring == "change" and change.windows == ("baseline", "follow_up")


def test_a_value_nobody_is_eligible_for_is_not_applicable_not_suppressed():
    body = json.loads(formats.to_json(_report()))
    total = body["cells"][0]["measures"]
    retention = next(m for m in total if m["measure"] == "retention_90d")
    assert retention["value"] is None and not retention["suppressed"]
    assert retention["status_reason"] == "not_applicable"
