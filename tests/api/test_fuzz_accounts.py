"""No input to the account endpoints produces a 500: hypothesis throws structured garbage at each."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Api

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=30),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def field_values(name: str):
    typical = {
        "email": st.emails() | st.text(max_size=40),
        "password": st.text(min_size=0, max_size=40),
        "timezone": st.sampled_from(["UTC", "America/New_York", "Nope/Nope", "", "../etc/passwd"])
        | st.text(max_size=20),
        "country": st.sampled_from(["US", "GB", "XX", "us", ""]) | st.text(max_size=3),
        "sex": st.sampled_from(["female", "male", "unspecified", "x"]),
        "goal": st.fixed_dictionaries(
            {"type": st.sampled_from(["abstain", "moderate", "x"])},
            optional={"weekly_limit": json_scalars},
        )
        | json_values,
        "reminders": st.fixed_dictionaries(
            {},
            optional={
                "log_time": st.text(max_size=6) | json_scalars,
                "quiet_hours": st.none()
                | st.fixed_dictionaries({"start": st.text(max_size=6), "end": st.text(max_size=6)}),
                "muted_kinds": st.lists(st.text(max_size=15), max_size=4) | json_values,
            },
        )
        | json_values,
        "consents": st.fixed_dictionaries({"outcome_sharing": json_scalars}) | json_values,
    }
    return typical.get(name, json_values)


def bodies(names: list[str]):
    return st.fixed_dictionaries({}, optional={n: field_values(n) for n in [*names, "extra", "role", "id"]})


REGISTER_FIELDS = [
    "email",
    "password",
    "timezone",
    "display_name",
    "country",
    "sex",
    "goal",
    "enrollment_code",
    "consents",
]
PATCH_FIELDS = ["display_name", "timezone", "country", "sex", "goal", "reminders", "consents"]


@pytest.fixture
def member(register):
    """One member for every example of a test (hypothesis reuses function-scoped fixtures)."""
    return register()


FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


_addresses = itertools.count(1)


def fresh_api(app) -> Api:
    """A new address per example, so the per-address limits do not hide validation behind 429s."""
    client = app.test_client()
    n = next(_addresses)
    client.environ_base["REMOTE_ADDR"] = f"198.51.{(n >> 8) & 255}.{n & 255}"
    return Api(client)


@FUZZ
@given(body=bodies(REGISTER_FIELDS) | json_values)
def test_register_never_500(app, body):
    r = fresh_api(app).post("/auth/register", body)
    assert r.status_code in {201, 400, 409, 422, 429}, (body, r.get_json())
    if r.status_code >= 400:
        assert r.get_json()["error"]["status"] == r.status_code


@FUZZ
@given(body=bodies(PATCH_FIELDS) | json_values)
def test_patch_me_never_500(member, body):
    r = member.patch("/me", body)
    assert r.status_code in {200, 400, 422}, (body, r.get_json())


@FUZZ
@given(body=bodies(["email", "password", "refresh_token", "platform", "push_token"]) | json_values)
def test_token_refresh_devices_never_500(app, member, body):
    for path in ("/auth/token", "/auth/refresh"):
        r = fresh_api(app).post(path, body)
        assert r.status_code in {200, 400, 401, 422}, (path, body, r.get_json())
    r = member.post("/me/devices", body)
    assert r.status_code in {200, 201, 400, 409, 422}, (body, r.get_json())
