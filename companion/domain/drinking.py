"""Drinking: grams of ethanol, standard drinks by country, heavy days, log provenance, WHO risk levels.

Grams are the record (DOMAIN.md). Standard drinks are derived from grams, in the member's country's
size, only when shown or compared with a goal, so changing country never rewrites history.

Pure: values in, values out; `today` is always an argument.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from types import MappingProxyType

from companion.domain.errors import InvalidInput

#: Density of ethanol, g/ml (DOMAIN.md).
ETHANOL_G_PER_ML = Decimal("0.789")

#: Grams of ethanol in one standard drink, by ISO 3166-1 alpha-2 country (DOMAIN.md).
STANDARD_DRINK_GRAMS: Mapping[str, Decimal] = MappingProxyType(
    {
        "US": Decimal("14"),
        "GB": Decimal("8"),  # the UK "unit"
        "AU": Decimal("10"),
        "NZ": Decimal("10"),
        "IE": Decimal("10"),
        "CA": Decimal("13.45"),
        "JP": Decimal("20"),
        "AT": Decimal("20"),
        "DK": Decimal("12"),
    }
)

#: Countries not in STANDARD_DRINK_GRAMS use this one's size (API.md: `country` defaults to US).
DEFAULT_COUNTRY = "US"

#: The WHO AUDIT questionnaire's standard drink, g. Not a country; for research exports.
WHO_AUDIT = Decimal("10")

#: Stored grams are quantized to this (ROUND_HALF_UP), once, after summing a day's drinks. A hundredth
#: of a gram is far below any measuring error and keeps a step-0.1 standard-drink entry exact for
#: every country size (0.1 x 13.45 = 1.345 g -> 1.35 g still reads back as 0.1 drink).
GRAMS_QUANTUM = Decimal("0.01")

#: Standard drinks are shown with one decimal (API.md: step 0.1), ROUND_HALF_UP.
STANDARD_DRINKS_QUANTUM = Decimal("0.1")

#: Heavy drinking day, g of ethanol on one day, at or above (NIAAA; FDA 2015 draft guidance).
HEAVY_DAY_GRAMS: Mapping[str, Decimal] = MappingProxyType({"male": Decimal("70"), "female": Decimal("56")})

#: Sex whose thresholds apply when sex is `unspecified` or unknown: the lower, women's ones (ours).
FALLBACK_SEX = "female"

#: NIAAA heavy weekly use, US standard drinks in 7 days, at or above (DOMAIN.md): 15 for men, 8 for
#: women (and, by FALLBACK_SEX, unspecified). Counted in US drinks (14 g) whatever the member's country.
NIAAA_WEEKLY_DRINKS: Mapping[str, Decimal] = MappingProxyType({"male": Decimal(15), "female": Decimal(8)})

#: How far back a drink log may be entered or edited, days before the member's local today (API.md).
BACKFILL_DAYS = 60


class Sex(enum.StrEnum):
    """The member's `sex` (API.md). Functions here take plain `str` too; StrEnum members are str."""

    FEMALE = "female"
    MALE = "male"
    UNSPECIFIED = "unspecified"


class DrinkKind(enum.StrEnum):
    BEER = "beer"
    WINE = "wine"
    SPIRITS = "spirits"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class DrinkItem:
    """`count` drinks of one kind, as entered: `drinks` [{kind, volume_ml, abv_percent, count}]."""

    kind: DrinkKind
    volume_ml: int
    abv_percent: Decimal
    count: int = 1

    def __post_init__(self) -> None:
        # The schema enforces the API ranges; these guard the arithmetic against impossible values.
        if self.volume_ml <= 0 or self.count < 1 or not Decimal(0) <= self.abv_percent <= Decimal(100):
            raise ValueError(f"impossible drink: {self!r}")


class LogSource(enum.StrEnum):
    """Provenance of a day's log (Timeline Followback): recall entries are less reliable."""

    REALTIME = "realtime"
    RECALL = "recall"


class WhoLevel(enum.IntEnum):
    """WHO risk drinking level. Ordered, so a two-level reduction is `before - after >= 2`."""

    LOW = 1
    MEDIUM = 2
    HIGH = 3
    VERY_HIGH = 4


#: Upper bounds (inclusive), mean g/day, of each WHO level but VERY_HIGH (DOMAIN.md). The table's
#: integer bands ("low 0-20, medium 21-40") leave gaps such as 20.5; we read each band as running up
#: to the next band's start: low <= 20 < medium <= 40 < high <= 60 < very high (women).
WHO_UPPER_BOUNDS: Mapping[str, tuple[tuple[WhoLevel, Decimal], ...]] = MappingProxyType(
    {
        "female": (
            (WhoLevel.LOW, Decimal("20")),
            (WhoLevel.MEDIUM, Decimal("40")),
            (WhoLevel.HIGH, Decimal("60")),
        ),
        "male": (
            (WhoLevel.LOW, Decimal("40")),
            (WhoLevel.MEDIUM, Decimal("60")),
            (WhoLevel.HIGH, Decimal("100")),
        ),
    }
)


def _threshold_sex(sex: str | None) -> str:
    """`male` or `female`: whose thresholds apply. Anything else gets the women's (ours)."""
    return "male" if sex == Sex.MALE else FALLBACK_SEX


def standard_drink_grams(country: str) -> Decimal:
    """Grams in one standard drink for `country`; an unlisted country uses the US size."""
    return STANDARD_DRINK_GRAMS.get(country.upper(), STANDARD_DRINK_GRAMS[DEFAULT_COUNTRY])


#: What a country's standard drink is called where drinks are shown; others: "<CC> standard drinks".
UNIT_NAMES: Mapping[str, str] = MappingProxyType(
    {"US": "US drinks", "GB": "UK units", "AU": "AU standard drinks", "NZ": "NZ standard drinks"}
)


def unit_name(country: str) -> str:
    """The name of the unit `standard_drinks_from_grams` counts in for `country` (an unlisted country
    counts in US drinks, as it uses the US size)."""
    code = country.upper()
    if code not in STANDARD_DRINK_GRAMS:
        code = DEFAULT_COUNTRY
    return UNIT_NAMES.get(code, f"{code} standard drinks")


def quantize_grams(grams: Decimal) -> Decimal:
    """Grams as stored: to GRAMS_QUANTUM, half up."""
    return grams.quantize(GRAMS_QUANTUM, rounding=ROUND_HALF_UP)


def grams_of(items: Iterable[DrinkItem]) -> Decimal:
    """Grams of ethanol in `items`: sum of volume x ABV/100 x 0.789 x count, rounded once at the end."""
    total = sum(
        (Decimal(i.volume_ml) * i.abv_percent / 100 * ETHANOL_G_PER_ML * i.count for i in items),
        start=Decimal(0),
    )
    return quantize_grams(total)


def grams_from_standard_drinks(n: Decimal, country: str) -> Decimal:
    """Grams for `n` standard drinks of `country`'s size (a `standard_drinks` entry)."""
    if n < 0:
        raise ValueError("negative standard drinks")
    return quantize_grams(n * standard_drink_grams(country))


def standard_drinks_from_grams(grams: Decimal, country: str) -> Decimal:
    """Standard drinks of `country`'s size in `grams`, to 0.1 half up: what the member sees."""
    if grams < 0:
        raise ValueError("negative grams")
    return (grams / standard_drink_grams(country)).quantize(STANDARD_DRINKS_QUANTUM, rounding=ROUND_HALF_UP)


def heavy_day_grams(sex: str | None) -> Decimal:
    """The grams from which a day is heavy for `sex` (the same in every country)."""
    return HEAVY_DAY_GRAMS[_threshold_sex(sex)]


def is_heavy_day(grams: Decimal, sex: str | None) -> bool:
    """A heavy drinking day: at or above the sex's threshold in grams (the same in every country)."""
    return grams >= heavy_day_grams(sex)


def log_source(day: date, *, today: date) -> LogSource:
    """`recall` when the log for `day` is entered after the next local day, else `realtime`.

    Logging last night's drinks the next morning is still real time; two days later it is recall.
    """
    return LogSource.RECALL if today > day + timedelta(days=1) else LogSource.REALTIME


def check_loggable(day: date, *, today: date, backfill_days: int = BACKFILL_DAYS) -> None:
    """Refuse a log for a future day, or for a day more than `backfill_days` before today.

    :raises InvalidInput: naming the `date` field.
    """
    if day > today:
        message = "Date cannot be after your local today."
    elif day < today - timedelta(days=backfill_days):
        message = f"Date cannot be more than {backfill_days} days ago."
    else:
        return
    raise InvalidInput(message, fields={"date": [message]})


def who_level(mean_grams_per_day: Decimal, sex: str | None) -> WhoLevel:
    """WHO risk drinking level of a mean daily intake (women's bands for unspecified sex).

    A fractional mean above a band's integer top belongs to the next band: 20.5 g for a woman is
    MEDIUM (see WHO_UPPER_BOUNDS).
    """
    if mean_grams_per_day < 0:
        raise ValueError("negative mean grams")
    for level, upper in WHO_UPPER_BOUNDS[_threshold_sex(sex)]:
        if mean_grams_per_day <= upper:
            return level
    return WhoLevel.VERY_HIGH


def over_niaaa_weekly(grams: Decimal, sex: str | None) -> bool:
    """Whether `grams` of ethanol in 7 days reach NIAAA's heavy weekly use for `sex` (US drinks)."""
    return grams >= NIAAA_WEEKLY_DRINKS[_threshold_sex(sex)] * standard_drink_grams("US")
