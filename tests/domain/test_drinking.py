"""Grams, standard drinks, heavy days, log provenance and WHO levels (DOMAIN.md "Drinking")."""

from datetime import date, timedelta
from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from companion.domain.drinking import (
    STANDARD_DRINK_GRAMS,
    WHO_AUDIT,
    DrinkItem,
    DrinkKind,
    LogSource,
    Sex,
    WhoLevel,
    check_loggable,
    grams_from_standard_drinks,
    grams_of,
    is_heavy_day,
    log_source,
    standard_drink_grams,
    standard_drinks_from_grams,
    unit_name,
    who_level,
)
from companion.domain.errors import InvalidInput

BEER, WINE, SPIRITS, OTHER = DrinkKind.BEER, DrinkKind.WINE, DrinkKind.SPIRITS, DrinkKind.OTHER
TODAY = date(2026, 11, 20)
COUNTRIES = sorted(STANDARD_DRINK_GRAMS)


@pytest.mark.parametrize(("country", "grams"), [
    ("US",  D("14")),
    ("us",  D("14")),     # case does not matter
    ("GB",  D("8")),
    ("AU",  D("10")),
    ("NZ",  D("10")),
    ("IE",  D("10")),
    ("CA",  D("13.45")),
    ("JP",  D("20")),
    ("AT",  D("20")),
    ("DK",  D("12")),
    ("FR",  D("14")),     # unlisted: the US size
    ("",    D("14")),
])  # fmt: skip
def test_standard_drink_grams(country, grams):
    assert standard_drink_grams(country) == grams


@pytest.mark.parametrize(("country", "name"), [
    ("US", "US drinks"),
    ("GB", "UK units"),
    ("gb", "UK units"),
    ("AU", "AU standard drinks"),
    ("CA", "CA standard drinks"),
    ("FR", "US drinks"),  # unlisted: counted in US drinks, so named so
])  # fmt: skip
def test_unit_name(country, name):
    assert unit_name(country) == name


def test_who_audit_drink_is_ten_grams():
    assert D("10") == WHO_AUDIT


@pytest.mark.parametrize(("items", "grams"), [
    ([],                                          D("0.00")),
    ([DrinkItem(BEER,    355,  D("5"),   1)],     D("14.00")),    # 14.00475
    ([DrinkItem(WINE,    150,  D("12"),  1)],     D("14.20")),    # 14.202
    ([DrinkItem(SPIRITS,  44,  D("40"),  1)],     D("13.89")),    # 13.8864
    ([DrinkItem(BEER,    500,  D("5"),   2)],     D("39.45")),    # 19.725 x 2
    ([DrinkItem(OTHER,   330,  D("4.5"), 3)],     D("35.15")),    # 11.71665 x 3 = 35.14995
    ([DrinkItem(BEER,    355,  D("5"),   1),
      DrinkItem(WINE,    150,  D("12"),  1)],     D("28.21")),    # 28.20675: rounded once, not 28.20
    ([DrinkItem(BEER,    330,  D("0"),   1)],     D("0.00")),     # alcohol-free beer
    ([DrinkItem(BEER,      1,  D("0.5"), 1)],     D("0.00")),     # 0.003945
    ([DrinkItem(SPIRITS, 2000, D("100"), 1)],     D("1578.00")),
])  # fmt: skip
def test_grams_of(items, grams):
    assert grams_of(items) == grams
    assert grams_of(items).as_tuple().exponent == -2


@pytest.mark.parametrize(("volume_ml", "abv", "count"), [
    (0,    D("5"),   1),
    (-1,   D("5"),   1),
    (330,  D("-1"),  1),
    (330,  D("101"), 1),
    (330,  D("5"),   0),
])  # fmt: skip
def test_impossible_drink_is_a_bug(volume_ml, abv, count):
    with pytest.raises(ValueError):
        DrinkItem(BEER, volume_ml, abv, count)


@pytest.mark.parametrize(("n", "country", "grams"), [
    (D("0"),    "US",  D("0.00")),
    (D("1"),    "US",  D("14.00")),
    (D("0.1"),  "CA",  D("1.35")),     # 1.345, half up
    (D("2.5"),  "GB",  D("20.00")),
    (D("50"),   "JP",  D("1000.00")),
    (D("3"),    "XX",  D("42.00")),
])  # fmt: skip
def test_grams_from_standard_drinks(n, country, grams):
    assert grams_from_standard_drinks(n, country) == grams


@pytest.mark.parametrize(("grams", "country", "drinks"), [
    (D("0"),      "DK",  D("0.0")),
    (D("14"),     "US",  D("1.0")),
    (D("28.21"),  "US",  D("2.0")),
    (D("20.30"),  "US",  D("1.5")),    # exactly 1.45: half up, not to even
    (D("20.29"),  "US",  D("1.4")),
    (D("56"),     "US",  D("4.0")),
    (D("56"),     "GB",  D("7.0")),
    (D("4.00"),   "GB",  D("0.5")),
    (D("1.35"),   "CA",  D("0.1")),
    (D("98.40"),  "US",  D("7.0")),    # 7.0286
])  # fmt: skip
def test_standard_drinks_from_grams(grams, country, drinks):
    assert standard_drinks_from_grams(grams, country) == drinks


def test_negative_amounts_are_bugs():
    with pytest.raises(ValueError):
        standard_drinks_from_grams(D("-0.01"), "US")
    with pytest.raises(ValueError):
        grams_from_standard_drinks(D("-0.1"), "US")


@given(tenths=st.integers(0, 500), country=st.sampled_from([*COUNTRIES, "FR"]))
def test_a_standard_drinks_entry_reads_back_exactly(tenths, country):
    """API entries are 0-50 in steps of 0.1: storing them as grams loses nothing a member can see."""
    n = D(tenths) / 10
    assert standard_drinks_from_grams(grams_from_standard_drinks(n, country), country) == n


@given(
    n=st.decimals(min_value=0, max_value=50, places=3, allow_nan=False, allow_infinity=False),
    country=st.sampled_from(COUNTRIES),
)
def test_grams_standard_drinks_round_trip_within_half_a_tenth(n, country):
    assert abs(standard_drinks_from_grams(grams_from_standard_drinks(n, country), country) - n) <= D("0.05")


@given(
    a=st.builds(DrinkItem, st.sampled_from(DrinkKind), st.integers(1, 2000),
                st.decimals(0, 100, places=1), st.integers(1, 20)),
    b=st.builds(DrinkItem, st.sampled_from(DrinkKind), st.integers(1, 2000),
                st.decimals(0, 100, places=1), st.integers(1, 20)),
)  # fmt: skip
def test_grams_of_is_additive_up_to_rounding(a, b):
    assert grams_of([a, b]) == grams_of([b, a])
    assert abs(grams_of([a, b]) - grams_of([a]) - grams_of([b])) <= D("0.01")


@pytest.mark.parametrize(("grams", "sex", "heavy"), [
    (D("0"),      "female",         False),
    (D("55.99"),  "female",         False),
    (D("56"),     "female",         True),     # >= 4 US drinks
    (D("56"),     "unspecified",    True),     # unknown sex: the women's threshold (ours)
    (D("56"),     None,             True),
    (D("56"),     "not-a-sex",      True),
    (D("56"),     "male",           False),
    (D("69.99"),  Sex.MALE,         False),
    (D("70"),     "male",           True),     # >= 5 US drinks
    (D("70.00"),  Sex.MALE,         True),
])  # fmt: skip
def test_is_heavy_day(grams, sex, heavy):
    assert is_heavy_day(grams, sex) is heavy


@pytest.mark.parametrize(("day", "source"), [
    (TODAY,                          LogSource.REALTIME),
    (TODAY - timedelta(days=1),      LogSource.REALTIME),   # last night, logged this morning
    (TODAY - timedelta(days=2),      LogSource.RECALL),
    (TODAY - timedelta(days=60),     LogSource.RECALL),
])  # fmt: skip
def test_log_source(day, source):
    assert log_source(day, today=TODAY) is source


@pytest.mark.parametrize(("day", "backfill_days", "error"), [
    (TODAY,                         60,  None),
    (TODAY - timedelta(days=60),    60,  None),
    (TODAY + timedelta(days=1),     60,  "Date cannot be after your local today."),
    (TODAY - timedelta(days=61),    60,  "Date cannot be more than 60 days ago."),
    (TODAY - timedelta(days=14),    14,  None),
    (TODAY - timedelta(days=15),    14,  "Date cannot be more than 14 days ago."),
])  # fmt: skip
def test_check_loggable(day, backfill_days, error):
    if error is None:
        check_loggable(day, today=TODAY, backfill_days=backfill_days)
        return
    with pytest.raises(InvalidInput) as caught:
        check_loggable(day, today=TODAY, backfill_days=backfill_days)
    assert caught.value.fields == {"date": [error]}
    assert caught.value.code == "invalid_payload"


@pytest.mark.parametrize(("mean", "sex", "level"), [
    (D("0"),      "female",       WhoLevel.LOW),
    (D("20"),     "female",       WhoLevel.LOW),
    (D("20.01"),  "female",       WhoLevel.MEDIUM),   # between the table's integer bands: the higher one
    (D("20.5"),   "female",       WhoLevel.MEDIUM),
    (D("21"),     "female",       WhoLevel.MEDIUM),
    (D("40"),     "female",       WhoLevel.MEDIUM),
    (D("40.5"),   "female",       WhoLevel.HIGH),
    (D("60"),     "female",       WhoLevel.HIGH),
    (D("60.5"),   "female",       WhoLevel.VERY_HIGH),
    (D("61"),     "female",       WhoLevel.VERY_HIGH),
    (D("400"),    "female",       WhoLevel.VERY_HIGH),
    (D("21"),     "unspecified",  WhoLevel.MEDIUM),   # women's bands
    (D("41"),     None,           WhoLevel.HIGH),
    (D("40"),     "male",         WhoLevel.LOW),
    (D("40.5"),   "male",         WhoLevel.MEDIUM),
    (D("60"),     "male",         WhoLevel.MEDIUM),
    (D("61"),     "male",         WhoLevel.HIGH),
    (D("100"),    "male",         WhoLevel.HIGH),
    (D("100.5"),  "male",         WhoLevel.VERY_HIGH),
    (D("101"),    "male",         WhoLevel.VERY_HIGH),
])  # fmt: skip
def test_who_level(mean, sex, level):
    assert who_level(mean, sex) is level


def test_who_levels_are_ordered_for_reductions():
    assert WhoLevel.VERY_HIGH - WhoLevel.MEDIUM == 2
    with pytest.raises(ValueError):
        who_level(D("-1"), "male")
