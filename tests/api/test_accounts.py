"""API.md "Accounts": every call, every status it can answer."""

from __future__ import annotations

import pytest

from companion import db
from companion.accounts import services
from tests.conftest import PASSWORD, Api, registration


@pytest.fixture
def insurer(app):
    with app.app_context(), db.unit_of_work():
        return services.create_insurer("Acme Health", "ACME-2026", now=db.utcnow()).code


# --- register ---------------------------------------------------------------------------------------


def test_register_returns_member_and_tokens(api, insurer):
    body = registration(
        display_name="Robin",
        country="GB",
        sex="female",
        goal={"type": "moderate", "weekly_limit": 14},
        enrollment_code=insurer.lower(),
        consents={"outcome_sharing": True},
        timezone="Europe/London",
    )
    r = api.post("/auth/register", body)
    assert r.status_code == 201, r.get_json()
    out = r.get_json()
    assert out["access_token"] and out["refresh_token"] and out["expires_at"].endswith("Z")
    member = out["member"]
    assert member["email"] == body["email"]
    assert member["country"] == "GB" and member["sex"] == "female"
    assert member["goal"] == {"type": "moderate", "weekly_limit": 14.0}
    assert member["insurer"] == {"name": "Acme Health", "code": "ACME-2026"}
    assert member["consents"]["outcome_sharing"] is True
    assert member["reminders"]["log_time"] == "20:00"
    assert member["role"] == "member"
    assert "password" not in member and "password_hash" not in member


def test_register_defaults(api):
    r = api.post("/auth/register", registration())
    member = r.get_json()["member"]
    assert member["country"] == "US" and member["sex"] == "unspecified"
    assert member["consents"]["outcome_sharing"] is False and member["insurer"] is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"password": "short"}, "password"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": "EST5EDT-nope"}, "timezone"),
        ({"country": "XX"}, "country"),
        ({"country": "usa"}, "country"),
        ({"sex": "other"}, "sex"),
        ({"goal": {"type": "moderate"}}, "goal"),
        ({"goal": {"type": "abstain", "weekly_limit": 3}}, "goal"),
        ({"goal": {"type": "sometimes"}}, "goal"),
        ({"goal": {"type": "moderate", "weekly_limit": -1}}, "goal"),
        ({"goal": "abstain"}, "goal"),
        ({"consents": {"outcome_sharing": "maybe"}}, "consents"),
        ({"consents": {"marketing": True, "outcome_sharing": True}}, "consents"),
        ({"role": "admin"}, "role"),
        ({"coach_id": "x"}, "coach_id"),
        ({"display_name": ""}, "display_name"),
        ({"display_name": "x" * 81}, "display_name"),
        ({"enrollment_code": "NOPE"}, "enrollment_code"),
    ],
)
def test_register_rejects_each_bad_field_by_name(api, change, field):
    r = api.post("/auth/register", registration(**change))
    assert r.status_code == 422, r.get_json()
    error = r.get_json()["error"]
    assert error["code"] == "invalid_payload" and error["status"] == 422
    assert field in error["fields"], error


def test_register_requires_fields(api):
    r = api.post("/auth/register", {})
    assert r.status_code == 422
    assert set(r.get_json()["error"]["fields"]) == {"email", "password", "timezone", "goal"}


def test_register_same_email_is_409_whatever_the_case(api):
    body = registration()
    assert api.post("/auth/register", body).status_code == 201
    again = api.post("/auth/register", {**body, "email": body["email"].upper()})
    assert again.status_code == 409
    assert again.get_json()["error"]["code"] == "conflict"


# --- token ------------------------------------------------------------------------------------------


def test_token_signs_in(api, register):
    member = register()
    r = api.post("/auth/token", {"email": member.body["member"]["email"].upper(), "password": PASSWORD})
    assert r.status_code == 200
    assert r.get_json()["member"]["id"] == member.body["member"]["id"]
    assert Api(api.client, r.get_json()["access_token"]).get("/me").status_code == 200


def test_wrong_password_and_unknown_email_are_the_same_401(api, register):
    member = register()
    wrong = api.post("/auth/token", {"email": member.body["member"]["email"], "password": "x" * 12})
    unknown = api.post("/auth/token", {"email": "nobody@example.org", "password": "x" * 12})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.get_json() == unknown.get_json()
    assert wrong.get_json()["error"]["code"] == "unauthenticated"


def test_token_rate_limited_after_repeated_failures(api, register):
    member = register()
    email = member.body["member"]["email"]
    statuses = [
        api.post("/auth/token", {"email": email, "password": "wrong-password"}).status_code for _ in range(6)
    ]
    assert statuses == [401] * 5 + [429]
    r = api.post("/auth/token", {"email": email, "password": PASSWORD})
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) > 0
    assert r.get_json()["error"]["code"] == "rate_limited"


def test_failures_are_counted_per_email_across_addresses(app, register):
    member = register()
    email = member.body["member"]["email"]
    statuses = []
    for n in range(6):
        c = app.test_client()
        c.environ_base["REMOTE_ADDR"] = f"192.0.2.{n + 1}"
        statuses.append(
            Api(c).post("/auth/token", {"email": email, "password": "wrong-password"}).status_code
        )
    assert statuses[-1] == 429


def test_successful_sign_ins_do_not_count_as_failures(api, register):
    member = register()
    email = member.body["member"]["email"]
    for _ in range(7):
        assert api.post("/auth/token", {"email": email, "password": PASSWORD}).status_code == 200


def test_register_is_rate_limited_per_address(api):
    statuses = [api.post("/auth/register", registration()).status_code for _ in range(6)]
    assert statuses[:5] == [201] * 5
    assert statuses[5] == 429


# --- refresh ----------------------------------------------------------------------------------------


def test_refresh_rotates(api, register):
    member = register()
    first = member.body["refresh_token"]
    r = api.post("/auth/refresh", {"refresh_token": first})
    assert r.status_code == 200
    pair = r.get_json()
    assert pair["refresh_token"] != first and pair["access_token"] != member.body["access_token"]
    assert Api(api.client, pair["access_token"]).get("/me").status_code == 200
    # The old access token of the same login keeps working until it expires.
    assert member.get("/me").status_code == 200


def test_spent_refresh_token_revokes_the_whole_login(api, register):
    member = register()
    first = member.body["refresh_token"]
    second = api.post("/auth/refresh", {"refresh_token": first}).get_json()
    reuse = api.post("/auth/refresh", {"refresh_token": first})
    assert reuse.status_code == 401
    # Every token of that login is dead: the thief's and the member's alike.
    assert Api(api.client, second["access_token"]).get("/me").status_code == 401
    assert api.post("/auth/refresh", {"refresh_token": second["refresh_token"]}).status_code == 401
    assert member.get("/me").status_code == 401


def test_reuse_revokes_only_that_login(api, register):
    member = register()
    other_login = api.post(
        "/auth/token", {"email": member.body["member"]["email"], "password": PASSWORD}
    ).get_json()
    first = member.body["refresh_token"]
    api.post("/auth/refresh", {"refresh_token": first})
    api.post("/auth/refresh", {"refresh_token": first})
    assert Api(api.client, other_login["access_token"]).get("/me").status_code == 200


@pytest.mark.parametrize("token", ["", "garbage", "x" * 300])
def test_refresh_rejects_bad_tokens(api, token):
    r = api.post("/auth/refresh", {"refresh_token": token})
    assert r.status_code in (401, 422)
    assert r.get_json()["error"]["code"] in ("unauthenticated", "invalid_payload")


def test_access_token_is_not_a_refresh_token(api, register):
    member = register()
    assert api.post("/auth/refresh", {"refresh_token": member.body["access_token"]}).status_code == 401


def test_expired_refresh_token_is_401(app, api, register):
    member = register()
    with app.app_context(), db.unit_of_work() as s:
        from sqlalchemy import text

        s.execute(text("UPDATE auth_tokens SET expires_at = now() - interval '1 second'"))
    assert api.post("/auth/refresh", {"refresh_token": member.body["refresh_token"]}).status_code == 401
    assert member.get("/me").status_code == 401


# --- logout -----------------------------------------------------------------------------------------


def test_logout_revokes_the_token_and_its_refresh(api, register):
    member = register()
    r = member.post("/auth/logout")
    assert r.status_code == 204 and r.data == b""
    assert member.get("/me").status_code == 401
    assert api.post("/auth/refresh", {"refresh_token": member.body["refresh_token"]}).status_code == 401


def test_logout_needs_a_token(api):
    r = api.post("/auth/logout")
    assert r.status_code == 401
    assert r.get_json()["error"]["code"] == "unauthenticated"


# --- /me --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header", [None, "Bearer", "Bearer nope", "Basic dXNlcjpwYXNz", "bearer   ", "Token abc"]
)
def test_me_requires_a_valid_bearer_token(api, header):
    r = api.get("/me", headers={"Authorization": header} if header else None)
    assert r.status_code == 401
    assert r.get_json()["error"]["code"] == "unauthenticated"


def test_patch_me_changes_settings(register):
    member = register()
    r = member.patch(
        "/me",
        {
            "display_name": "Robin",
            "timezone": "Pacific/Auckland",
            "country": "NZ",
            "sex": "male",
            "goal": {"type": "moderate", "weekly_limit": 10},
            "reminders": {
                "log_time": "21:30",
                "quiet_hours": {"start": "22:00", "end": "07:00"},
                "muted_kinds": ["streak", "streak", "weekly_summary"],
            },
            "consents": {"outcome_sharing": True},
        },
    )
    assert r.status_code == 200, r.get_json()
    me = member.get("/me").get_json()
    assert me["timezone"] == "Pacific/Auckland" and me["country"] == "NZ" and me["sex"] == "male"
    assert me["goal"] == {"type": "moderate", "weekly_limit": 10.0}
    assert me["reminders"] == {
        "log_time": "21:30",
        "quiet_hours": {"start": "22:00", "end": "07:00"},
        "muted_kinds": ["streak", "weekly_summary"],
    }
    assert me["consents"]["outcome_sharing"] is True and me["consents"]["updated_at"]
    # Clearing quiet hours and going back to abstinence.
    r = member.patch("/me", {"reminders": {"quiet_hours": None}, "goal": {"type": "abstain"}})
    assert r.get_json()["reminders"]["quiet_hours"] is None
    assert r.get_json()["goal"] == {"type": "abstain", "weekly_limit": None}


def test_patch_empty_body_changes_nothing(register):
    member = register()
    before = member.get("/me").get_json()
    r = member.patch("/me", {})
    assert r.status_code == 200
    after = r.get_json()
    assert {k: v for k, v in after.items() if k != "updated_at"} == {
        k: v for k, v in before.items() if k != "updated_at"
    }


@pytest.mark.parametrize("field", ["id", "email", "role", "coach", "insurer", "enrolled_at", "updated_at"])
def test_patch_me_refuses_server_owned_fields(register, field):
    member = register()
    r = member.patch("/me", {field: "anything", "display_name": "Robin"})
    assert r.status_code == 422
    assert field in r.get_json()["error"]["fields"]
    assert member.get("/me").get_json()["display_name"] is None  # nothing was applied


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"timezone": "Nowhere/Town"}, "timezone"),
        ({"reminders": {"log_time": "25:00"}}, "reminders"),
        ({"reminders": {"log_time": "8pm"}}, "reminders"),
        ({"reminders": {"quiet_hours": {"start": "22:00"}}}, "reminders"),
        ({"reminders": {"muted_kinds": ["coach_message"]}}, "reminders"),
        ({"unknown": 1}, "unknown"),
        ({"goal": {"type": "moderate"}}, "goal"),
    ],
)
def test_patch_me_validates(register, body, field):
    r = register().patch("/me", body)
    assert r.status_code == 422
    assert field in r.get_json()["error"]["fields"]


def test_staff_cannot_use_member_routes(staff):
    coach = staff("coach")
    r = coach.get("/me")
    assert r.status_code == 403
    assert r.get_json()["error"]["code"] == "forbidden"


# --- devices ----------------------------------------------------------------------------------------


def test_devices_register_idempotently_and_delete(register):
    member = register()
    first = member.post("/me/devices", {"platform": "ios", "push_token": "apns-token-1"})
    assert first.status_code == 201
    again = member.post("/me/devices", {"platform": "ios", "push_token": "apns-token-1"})
    assert again.status_code == 200 and again.get_json()["id"] == first.get_json()["id"]
    assert "push_token" not in first.get_json()
    assert len(member.get("/me/devices").get_json()["items"]) == 1
    assert member.delete(f"/me/devices/{first.get_json()['id']}").status_code == 204
    assert member.delete(f"/me/devices/{first.get_json()['id']}").status_code == 404
    assert member.get("/me/devices").get_json()["items"] == []


def test_device_of_another_member_is_404(register):
    alice, bob = register(), register()
    device = alice.post("/me/devices", {"platform": "android", "push_token": "fcm-1"}).get_json()
    assert bob.delete(f"/me/devices/{device['id']}").status_code == 404
    assert len(alice.get("/me/devices").get_json()["items"]) == 1


def test_push_token_moves_to_the_member_who_registers_it_last(register):
    alice, bob = register(), register()
    alice.post("/me/devices", {"platform": "android", "push_token": "shared-phone"})
    assert bob.post("/me/devices", {"platform": "android", "push_token": "shared-phone"}).status_code == 201
    assert alice.get("/me/devices").get_json()["items"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"platform": "windows", "push_token": "t"}, "platform"),
        ({"platform": "ios", "push_token": ""}, "push_token"),
        ({"platform": "ios"}, "push_token"),
        ({"platform": "ios", "push_token": "t", "id": "x"}, "id"),
    ],
)
def test_devices_validate(register, body, field):
    r = register().post("/me/devices", body)
    assert r.status_code == 422 and field in r.get_json()["error"]["fields"]


def test_device_path_must_be_a_uuid(register):
    assert register().delete("/me/devices/not-a-uuid").status_code == 404


# --- export and erasure -----------------------------------------------------------------------------


def test_export_holds_everything(register):
    member = register(display_name="Robin")
    member.post("/me/devices", {"platform": "ios", "push_token": "tok"})
    r = member.get("/me/export")
    assert r.status_code == 200
    export = r.get_json()
    assert export["account"]["email"] == member.body["member"]["email"]
    assert export["profile"]["display_name"] == "Robin"
    assert len(export["devices"]) == 1


def test_delete_me_erases_and_blocks_sign_in(app, api, register):
    member = register(display_name="Robin")
    email = member.body["member"]["email"]
    member.post("/me/devices", {"platform": "ios", "push_token": "tok"})
    wrong = member.delete("/me", {"password": "not the password"})
    assert wrong.status_code == 401
    r = member.delete("/me", {"password": PASSWORD})
    assert r.status_code == 202
    assert member.get("/me").status_code == 401
    assert api.post("/auth/token", {"email": email, "password": PASSWORD}).status_code == 401
    assert api.post("/auth/refresh", {"refresh_token": member.body["refresh_token"]}).status_code == 401
    with app.app_context():
        from sqlalchemy import text

        rows = db.session.execute(
            text("SELECT email, display_name, password_hash, deleted_at FROM users")
        ).all()
        assert len(rows) == 1
        assert email not in rows[0].email and rows[0].display_name is None and rows[0].password_hash is None
        assert rows[0].deleted_at is not None
        for table in ("members", "devices"):
            assert db.session.execute(text(f"SELECT count(*) FROM {table}")).scalar() == 0
    # The email is free again.
    assert api.post("/auth/register", registration(email=email)).status_code == 201


def test_delete_me_requires_password_field(register):
    r = register().delete("/me", {})
    assert r.status_code == 422 and "password" in r.get_json()["error"]["fields"]


def test_rate_limit_counts_and_reads_its_window_in_one_round_trip(api, monkeypatch):
    """The limiter's hit returns the window (companion/ratelimit.py): the headers come from it, and the
    second script (`get_moving_window`) is never run for a request that hit the limit."""
    from limits.storage import RedisStorage

    second_trips: list[str] = []
    read_window = RedisStorage.get_moving_window

    def counted(self, key, limit, expiry):
        second_trips.append(key)
        return read_window(self, key, limit, expiry)

    monkeypatch.setattr(RedisStorage, "get_moving_window", counted)
    api.client.environ_base["REMOTE_ADDR"] = "198.51.100.77"
    answers = [api.post("/auth/register", registration()) for _ in range(6)]
    assert [r.status_code for r in answers] == [201] * 5 + [429]
    assert [r.headers["X-RateLimit-Limit"] for r in answers[:5]] == ["5"] * 5
    assert [r.headers["X-RateLimit-Remaining"] for r in answers[:5]] == ["4", "3", "2", "1", "0"]
    assert int(answers[5].headers["Retry-After"]) > 0
    assert second_trips == []
