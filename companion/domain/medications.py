"""The medication catalogue (DOMAIN.md): the six AUD medications and the side effects a member may report.

Each medication lists its common side effects and the danger signs the safety rules watch for on it
(withdrawal signs, liver signs, contraindications, suicidal thoughts), plus `other`, which the API
accepts only with a note. Codes are stable snake_case: stored check-ins and flags refer to them.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


class Severity(enum.IntEnum):
    """A reported side effect's severity. Ordered, so `severity >= Severity.MODERATE` reads naturally."""

    MILD = 1
    MODERATE = 2
    SEVERE = 3

    @property
    def label(self) -> str:
        """The API's spelling: `mild`, `moderate`, `severe`."""
        return self.name.lower()

    @classmethod
    def from_label(cls, label: str) -> Severity:
        """Parse the API's spelling. :raises ValueError: not a severity."""
        try:
            return cls[label.upper()]
        except KeyError:
            raise ValueError(f"not a severity: {label!r}") from None


@dataclass(frozen=True, slots=True)
class SideEffect:
    code: str
    label: str


@dataclass(frozen=True, slots=True)
class Medication:
    code: str
    name: str
    drug_class: str
    side_effects: tuple[SideEffect, ...]

    @property
    def side_effect_codes(self) -> frozenset[str]:
        return frozenset(s.code for s in self.side_effects)


#: Any side effect not in a medication's list; the API requires a `note` with it.
OTHER = "other"

#: Every side-effect code and its member-facing label.
LABELS: Mapping[str, str] = MappingProxyType(
    {
        # Common side effects.
        "drowsiness": "Drowsiness",
        "dizziness": "Dizziness",
        "weakness": "Weakness",
        "nausea": "Nausea",
        "confusion": "Confusion",
        "headache": "Headache",
        "insomnia": "Trouble sleeping",
        "fatigue": "Tiredness",
        "constipation": "Constipation",
        "urinary_frequency": "Needing to urinate more often",
        "anxiety": "Anxiety",
        "diarrhea": "Diarrhea",
        "tingling": "Tingling or pins and needles",
        "sedation": "Feeling sedated or slowed down",
        "trouble_thinking": "Trouble thinking or concentrating",
        "metallic_taste": "Metallic taste",
        # Danger signs.
        "hallucinations": "Seeing or hearing things that are not there",
        "seizure": "Seizure",
        "agitation": "Agitation or restlessness",
        "dark_urine": "Dark urine",
        "jaundice": "Yellow skin or eyes",
        "abdominal_pain": "Stomach pain",
        "pregnancy": "Pregnancy",
        "kidney_problems": "Kidney problems",
        "suicidal_thoughts": "Thoughts of suicide or self-harm",
        "opioid_use": "Used an opioid (painkiller, heroin, methadone...)",
        "kidney_stones": "Kidney stones",
        "tremor": "Shaking or trembling",
        "sweating": "Heavy sweating",
        OTHER: "Something else",
    }
)

#: Signs of withdrawal after doses stop (baclofen, gabapentin): the withdrawal-risk rule.
WITHDRAWAL_SIGNS = frozenset({"hallucinations", "seizure", "confusion", "agitation"})
#: Signs of liver injury (naltrexone, disulfiram): the liver-signs rule.
LIVER_SIGNS = frozenset({"dark_urine", "jaundice", "abdominal_pain"})
#: Conditions that contraindicate baclofen, acamprosate, gabapentin: the contraindication rule.
CONTRAINDICATION_SIGNS = frozenset({"pregnancy", "kidney_problems"})
#: Sedation that adds to alcohol's on baclofen or gabapentin: the sedation-with-drinking rule.
SEDATION_SIGNS = frozenset({"drowsiness", "dizziness", "confusion"})
#: Thoughts of suicide or self-harm: urgent at any severity, on any medication or none.
SUICIDAL_SIGNS = frozenset({"suicidal_thoughts"})
#: Opioid use, dangerous on naltrexone (precipitated withdrawal; overdose when trying to override it).
OPIOID_SIGNS = frozenset({"opioid_use"})
#: Kidney stones, a topiramate danger.
KIDNEY_STONE_SIGNS = frozenset({"kidney_stones"})

#: Medications whose abrupt stop risks withdrawal (DOMAIN.md safety rules).
WITHDRAWAL_RISK_MEDICATIONS = frozenset({"baclofen", "gabapentin"})
#: Medications watched for liver injury.
LIVER_WATCH_MEDICATIONS = frozenset({"naltrexone", "disulfiram"})
#: Medications contraindicated by pregnancy or kidney disease.
CONTRAINDICATED_MEDICATIONS = frozenset({"baclofen", "acamprosate", "gabapentin"})
#: Medications that add to alcohol's sedation.
SEDATING_MEDICATIONS = frozenset({"baclofen", "gabapentin"})
#: Medications on which opioid use is dangerous.
OPIOID_WATCH_MEDICATIONS = frozenset({"naltrexone"})
#: Medications that can cause kidney stones.
KIDNEY_STONE_MEDICATIONS = frozenset({"topiramate"})


def _effects(*codes: str) -> tuple[SideEffect, ...]:
    # Suicidal thoughts can be reported on every medication's check-in (any severity is urgent).
    extra = () if "suicidal_thoughts" in codes else ("suicidal_thoughts",)
    return tuple(SideEffect(code, LABELS[code]) for code in (*codes, *extra, OTHER))


#: The catalogue, in the order `GET /medications` lists it.
CATALOGUE: tuple[Medication, ...] = (
    Medication(
        "baclofen",
        "Baclofen",
        "GABA-B receptor agonist",
        _effects(
            # Common, most frequent first (label frequencies in DOMAIN.md).
            "drowsiness", "dizziness", "weakness", "nausea", "confusion", "headache", "insomnia",
            "fatigue", "constipation", "urinary_frequency",
            # Withdrawal signs (confusion is listed above), contraindications.
            "hallucinations", "seizure", "agitation", "pregnancy", "kidney_problems",
        ),
    ),
    Medication(
        "naltrexone",
        "Naltrexone",
        "Opioid receptor antagonist",
        _effects(
            "nausea", "headache", "dizziness", "fatigue", "anxiety", "insomnia",
            "dark_urine", "jaundice", "abdominal_pain", "opioid_use",
        ),
    ),
    Medication(
        "acamprosate",
        "Acamprosate",
        "Glutamate (NMDA) modulator",
        _effects("diarrhea", "insomnia", "anxiety", "suicidal_thoughts", "pregnancy", "kidney_problems"),
    ),
    Medication(
        "gabapentin",
        "Gabapentin",
        "Gabapentinoid anticonvulsant",
        _effects(
            "fatigue", "dizziness", "drowsiness", "headache", "insomnia",
            "hallucinations", "seizure", "confusion", "agitation", "pregnancy", "kidney_problems",
        ),
    ),
    Medication(
        "topiramate",
        "Topiramate",
        "Anticonvulsant",
        _effects("tingling", "sedation", "trouble_thinking", "kidney_stones"),
    ),
    Medication(
        "disulfiram",
        "Disulfiram",
        "Aldehyde dehydrogenase inhibitor",
        _effects("drowsiness", "metallic_taste", "dark_urine", "jaundice", "abdominal_pain"),
    ),
)  # fmt: skip

#: The catalogue by code.
MEDICATIONS: Mapping[str, Medication] = MappingProxyType({m.code: m for m in CATALOGUE})


def get_medication(code: str) -> Medication | None:
    """The catalogue entry for `code`, or None for an unknown medication."""
    return MEDICATIONS.get(code)


def side_effect_codes(code: str) -> frozenset[str]:
    """Side-effect codes a check-in on medication `code` may report (`other` included); empty if unknown."""
    medication = MEDICATIONS.get(code)
    return medication.side_effect_codes if medication else frozenset()


#: Symptoms a member may report at any time, with or without a plan (POST /symptom-reports), beyond
#: every medication's side effects: withdrawal, general and danger signs (issue 19). Pregnancy and
#: kidney disease keep the check-ins' codes (`pregnancy`, `kidney_problems`).
GENERAL_SYMPTOMS = (
    "hallucinations", "seizure", "confusion", "agitation", "tremor", "sweating", "suicidal_thoughts",
    "opioid_use", "pregnancy", "kidney_problems", "dark_urine", "jaundice", "abdominal_pain", "kidney_stones",
)  # fmt: skip


def _symptom_codes() -> tuple[str, ...]:
    codes = [s.code for m in CATALOGUE for s in m.side_effects if s.code != OTHER]
    return tuple(dict.fromkeys([*codes, *GENERAL_SYMPTOMS]))


#: Every code `GET /symptoms` lists, in order: each medication's side effects (catalogue order), then
#: the general symptoms. `other` is not one: a symptom report carries no per-symptom note.
SYMPTOM_CODES: tuple[str, ...] = _symptom_codes()
