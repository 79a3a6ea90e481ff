"""No input to the tracking endpoints produces a 500: hypothesis throws structured garbage at each."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.decimals(allow_nan=False, allow_infinity=False, places=4).map(str),
)
anything = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
instants = st.one_of(
    st.datetimes(timezones=st.sampled_from([UTC])).map(lambda d: d.isoformat()),
    st.sampled_from(
        ["2026-11-20T10:00:00", "not a time", "", "9999-12-31T23:59:59+14:00", "0001-01-01T00:00:00Z"]
    ),
    st.integers(-10, 10).map(lambda n: (datetime.now(UTC) - timedelta(days=n)).isoformat()),
)
uuids = st.one_of(st.uuids().map(str), st.text(max_size=40))
drink_items = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "kind": st.sampled_from(["beer", "wine", "spirits", "other", "mead"]),
            "volume_ml": st.integers(-5, 3000) | scalars,
            "abv_percent": st.decimals(min_value=-1, max_value=120, places=2).map(float) | scalars,
            "count": st.integers(-1, 200) | scalars,
        },
    ),
    max_size=3,
)
drink_logs = st.fixed_dictionaries(
    {},
    optional={
        "standard_drinks": st.decimals(min_value=-1, max_value=60, places=2).map(float) | scalars,
        "drinks": drink_items | scalars,
        "note": st.text(max_size=30) | scalars,
        "updated_at": instants | scalars,
        "surprise": scalars,
    },
)
cravings = st.fixed_dictionaries(
    {},
    optional={
        "id": uuids,
        "recorded_at": instants,
        "intensity": st.integers(-3, 13) | scalars,
        "triggers": st.lists(st.text(max_size=45), max_size=12) | scalars,
        "note": st.text(max_size=30) | scalars,
    },
)
readings = st.fixed_dictionaries(
    {},
    optional={
        "id": uuids,
        "measured_at": instants,
        "bac_g_dl": st.decimals(min_value=-1, max_value=1, places=4).map(float) | scalars,
        "device": st.fixed_dictionaries({}, optional={"model": scalars, "serial": scalars}) | scalars,
    },
)
dates = st.one_of(
    st.integers(-70, 5).map(lambda n: (datetime.now(UTC).date() - timedelta(days=n)).isoformat()),
    st.sampled_from(["2026-02-30", "0000-01-01", "x", "2026-1-1", "9999-12-31"]),
)
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def member(register):
    return register(timezone="Pacific/Auckland")


@FUZZ
@given(day=dates, body=drink_logs | anything)
def test_drink_log_put_never_500(member, day, body):
    r = member.put(f"/drink-logs/{day}", body)
    assert r.status_code in {200, 201, 400, 404, 409, 422}, (day, body, r.get_json())


@FUZZ
@given(body=cravings | anything, reading=readings | anything)
def test_craving_and_reading_post_never_500(member, body, reading):
    r = member.post("/cravings", body)
    assert r.status_code in {200, 201, 400, 409, 422}, (body, r.get_json())
    r = member.post("/bac-readings", reading)
    assert r.status_code in {200, 201, 400, 409, 422}, (reading, r.get_json())


@FUZZ
@given(
    items=st.lists(
        st.one_of(
            st.fixed_dictionaries(
                {"type": st.just("drink_log"), "data": drink_logs.map(lambda d: {**d, "date": "x"})}
            ),
            st.fixed_dictionaries({"type": st.just("craving"), "data": cravings}),
            st.fixed_dictionaries({"type": st.just("bac_reading"), "data": readings}),
            st.fixed_dictionaries({"type": st.just("medication_checkin"), "data": anything}),
            anything,
        ),
        max_size=6,
    )
)
def test_sync_never_500(member, items):
    r = member.post("/sync", {"items": items})
    assert r.status_code == 200, (items, r.get_json())
    assert len(r.get_json()["results"]) == len(items)


@FUZZ
@given(
    query=st.dictionaries(
        st.sampled_from(["from", "to", "cursor", "limit", "since", "x"]), st.text(max_size=15), max_size=4
    )
)
def test_list_queries_never_500(member, query):
    for path in ("/drink-logs", "/cravings", "/bac-readings", "/medication-checkins", "/sync"):
        r = member.client.get(
            "/api/v1" + path, query_string=query, headers={"Authorization": f"Bearer {member.token}"}
        )
        assert r.status_code in {200, 422}, (path, query, r.get_json())


def test_a_fresh_id_is_fine(member):
    """Control: the strategies above do reach the success path."""
    r = member.post(
        "/cravings", {"id": str(uuid.uuid4()), "recorded_at": datetime.now(UTC).isoformat(), "intensity": 3}
    )
    assert r.status_code == 201
