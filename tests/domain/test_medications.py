"""The medication catalogue: every common side effect and danger sign of DOMAIN.md, per medication."""

import re

import pytest

from companion.domain.medications import (
    CATALOGUE,
    CONTRAINDICATED_MEDICATIONS,
    CONTRAINDICATION_SIGNS,
    LIVER_SIGNS,
    LIVER_WATCH_MEDICATIONS,
    OTHER,
    SEDATING_MEDICATIONS,
    SEDATION_SIGNS,
    WITHDRAWAL_RISK_MEDICATIONS,
    WITHDRAWAL_SIGNS,
    Severity,
    get_medication,
    side_effect_codes,
)

WITHDRAWAL = {"hallucinations", "seizure", "confusion", "agitation"}
LIVER = {"dark_urine", "jaundice", "abdominal_pain"}
CONTRA = {"pregnancy", "kidney_problems"}


@pytest.mark.parametrize(("code", "common", "danger"), [
    ("baclofen",    {"drowsiness", "dizziness", "weakness", "nausea", "confusion", "headache", "insomnia",
                     "fatigue", "constipation", "urinary_frequency"},      WITHDRAWAL | CONTRA),
    ("naltrexone",  {"nausea", "headache", "dizziness", "fatigue", "anxiety", "insomnia"},
                    LIVER | {"opioid_use"}),
    ("acamprosate", {"diarrhea", "insomnia", "anxiety"},                   CONTRA | {"suicidal_thoughts"}),
    ("gabapentin",  {"fatigue", "dizziness", "drowsiness", "headache", "insomnia"},  WITHDRAWAL | CONTRA),
    ("topiramate",  {"tingling", "sedation", "trouble_thinking"},          {"kidney_stones"}),
    ("disulfiram",  {"drowsiness", "metallic_taste"},                      LIVER),
])  # fmt: skip
def test_side_effects(code, common, danger):
    # Suicidal thoughts may be reported on every medication (urgent at any severity, issue 19).
    assert side_effect_codes(code) == frozenset(common | danger | {"suicidal_thoughts", OTHER})


def test_catalogue_order_and_lookup():
    assert [m.code for m in CATALOGUE] == [
        "baclofen", "naltrexone", "acamprosate", "gabapentin", "topiramate", "disulfiram",
    ]  # fmt: skip
    for medication in CATALOGUE:
        assert get_medication(medication.code) is medication
        assert medication.name and medication.drug_class
        codes = [s.code for s in medication.side_effects]
        assert len(codes) == len(set(codes)), medication.code
        assert codes[-1] == OTHER
        assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", c) for c in codes)
        assert all(s.label and s.label[0].isupper() for s in medication.side_effects)


def test_unknown_medication():
    assert get_medication("aspirin") is None
    assert side_effect_codes("aspirin") == frozenset()


@pytest.mark.parametrize(("signs", "medications"), [
    (WITHDRAWAL_SIGNS,        WITHDRAWAL_RISK_MEDICATIONS),
    (LIVER_SIGNS,             LIVER_WATCH_MEDICATIONS),
    (CONTRAINDICATION_SIGNS,  CONTRAINDICATED_MEDICATIONS),
    (SEDATION_SIGNS,          SEDATING_MEDICATIONS),
    (frozenset({"suicidal_thoughts"}), frozenset({"acamprosate"})),
])  # fmt: skip
def test_each_safety_rule_can_see_its_signs(signs, medications):
    """A safety rule can only fire on a sign the member is able to report on that medication."""
    for code in medications:
        assert signs <= side_effect_codes(code), code


@pytest.mark.parametrize(("label", "severity"), [
    ("mild",      Severity.MILD),
    ("moderate",  Severity.MODERATE),
    ("SEVERE",    Severity.SEVERE),
])  # fmt: skip
def test_severity_labels(label, severity):
    assert Severity.from_label(label) is severity
    assert severity.label == label.lower()


def test_severity_is_ordered_and_strict():
    assert Severity.MILD < Severity.MODERATE < Severity.SEVERE
    with pytest.raises(ValueError):
        Severity.from_label("grade 3")
