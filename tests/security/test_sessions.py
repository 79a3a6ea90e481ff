"""Secrets and dashboard sessions (issue 21, findings 1 and 3): no working default key, a cookie that is
worth nothing without its server-side session, and sessions that really end (sign-out, password change,
an admin's "end all", idle and absolute timeouts, a cookie replayed from another browser or address)."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import select

from companion import db
from companion.accounts import services as accounts
from companion.app import create_app
from companion.auth.sessions import StaffSession
from companion.config import Config, instance_secret_key
from tests.conftest import PASSWORD
from tests.dashboard import pages
from tests.dashboard import world as world_builder


@pytest.fixture
def world(app, client):
    return world_builder.build(app, client)


# --- the key ------------------------------------------------------------------------------------------


def test_no_default_key_outside_production_the_instance_key_is_made_once(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("COMPANION_ENV", raising=False)
    first = Config.from_env(instance_path=str(tmp_path / "a"))
    again = Config.from_env(instance_path=str(tmp_path / "a"))
    other = Config.from_env(instance_path=str(tmp_path / "b"))
    assert first.secret_key == again.secret_key != other.secret_key
    assert len(first.secret_key) >= 48 and first.secret_key != "dev-only-insecure-key"
    path = tmp_path / "a" / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["secret_key"]  # no temporary file left
    assert instance_secret_key(tmp_path / "a") == first.secret_key


def test_production_refuses_to_start_without_secret_key(config, tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("COMPANION_ENV", "production")
    production = Config.from_env(
        database_url=config.database_url, redis_url=config.redis_url, instance_path=str(tmp_path)
    )
    assert production.secret_key == ""
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app(production)
    assert not (tmp_path / "secret_key").exists()  # production never makes a key of its own
    for published in ("dev-only-insecure-key",):
        with pytest.raises(RuntimeError, match="SECRET_KEY"):
            create_app(Config.from_env(database_url=config.database_url, redis_url=config.redis_url,
                                       instance_path=str(tmp_path), secret_key=published))  # fmt: skip


def test_the_web_command_and_the_image_run_with_the_key_rules():
    root = Path(__file__).resolve().parents[2]
    assert "COMPANION_ENV=production" in (root / "Dockerfile").read_text()
    assert "COMPANION_ENV: production" in (root / "docker-compose.yml").read_text()
    assert "PROXY_FIX: ${PROXY_FIX:-true}" in (root / "docker-compose.yml").read_text()


# --- forged and replayed cookies ----------------------------------------------------------------------


def forged_cookie(app, user_id, epoch: int = 0, **extra) -> str:
    """What an attacker holding the signing key makes: a valid Flask-Login cookie for someone else."""
    serializer = SecureCookieSessionInterface().get_signing_serializer(app)
    return serializer.dumps({"_user_id": f"{user_id}:{epoch}", "_fresh": True,
                             "dashboard_seen_at": datetime.now(UTC).timestamp(), **extra})  # fmt: skip


def test_a_forged_cookie_without_a_server_session_opens_nothing(app, client, world):
    admin_id = world.ids["admin"]
    for user_id, path in ((world.ids["coach_a"], "/dashboard/members"), (admin_id, "/dashboard/audit")):
        client.set_cookie("session", forged_cookie(app, user_id))
        r = client.get(path)
        assert r.status_code == 302 and "/dashboard/login" in r.headers["Location"], (path, r.status_code)
        assert "Alice" not in r.get_data(as_text=True)
        client.set_cookie("session", forged_cookie(app, user_id, sid="00000000-0000-4000-8000-000000000000"))
        assert client.get(path).status_code == 302  # an id the server never issued


def sign_in(app, world, who="coach_a", agent="browser-1", address="10.99.0.1"):
    browser = app.test_client()
    browser.environ_base.update(REMOTE_ADDR=address, HTTP_USER_AGENT=agent)
    r = pages.sign_in(browser, world.emails[who])
    assert r.status_code == 302 and r.headers["Location"].endswith("/dashboard/flags"), r.status_code
    assert browser.get("/dashboard/members").status_code == 200
    return browser


def replay(app, cookie: str, *, agent="browser-1", address="10.99.0.1"):
    thief = app.test_client()
    thief.environ_base.update(REMOTE_ADDR=address, HTTP_USER_AGENT=agent)
    thief.set_cookie("session", cookie)
    return thief


def test_a_cookie_captured_before_sign_out_is_refused_after_it(app, world):
    browser = sign_in(app, world)
    captured = browser.get_cookie("session").value
    assert replay(app, captured).get("/dashboard/flags").status_code == 200  # the same browser's copy
    pages.post_form(browser, "/dashboard/flags", "/dashboard/logout")
    for path in ("/dashboard/flags", f"/dashboard/members/{world.ids['alice']}"):
        r = replay(app, captured).get(path)
        assert r.status_code == 302 and "Alice" not in r.get_data(as_text=True), path
    assert ended_reasons(app, world.ids["coach_a"]) == ["signed_out"]


def ended_reasons(app, user_id) -> list[str | None]:
    with app.app_context():
        rows = db.session.scalars(select(StaffSession).where(StaffSession.user_id == user_id)).all()
        return sorted(r.ended_reason or "open" for r in rows)


@pytest.mark.parametrize(
    "elsewhere", [{"agent": "another-browser"}, {"address": "10.98.0.7"}], ids=["agent", "address"]
)
def test_a_cookie_used_from_another_browser_or_address_ends_the_session(app, world, elsewhere):
    browser = sign_in(app, world)
    captured = browser.get_cookie("session").value
    assert replay(app, captured, **elsewhere).get("/dashboard/members").status_code == 302
    assert browser.get("/dashboard/members").status_code == 302  # ended for the original browser too
    assert ended_reasons(app, world.ids["coach_a"]) == ["other_client"]


def test_a_password_change_ends_every_session_of_that_account_only(app, world):
    coach = sign_in(app, world)
    coach_elsewhere = sign_in(app, world, agent="browser-2", address="10.99.0.2")
    other_coach = sign_in(app, world, who="coach_b", agent="browser-3")
    with app.app_context(), db.unit_of_work():
        accounts.set_password(world.emails["coach_a"], "a brand new password", now=db.utcnow())
    assert coach.get("/dashboard/flags").status_code == 302
    assert coach_elsewhere.get("/dashboard/flags").status_code == 302
    assert other_coach.get("/dashboard/flags").status_code == 200
    assert ended_reasons(app, world.ids["coach_a"]) == ["password_changed", "password_changed"]
    again = pages.sign_in(app.test_client(), world.emails["coach_a"], "a brand new password")
    assert again.status_code == 302


def test_an_admin_ends_every_other_session(app, world):
    coach = sign_in(app, world)
    other_coach = sign_in(app, world, who="coach_b", agent="browser-3")
    admin = sign_in(app, world, who="admin", agent="admin-browser")
    r = pages.post_form(admin, "/dashboard/audit", "/dashboard/sessions/end-all")
    assert r.status_code == 302
    assert coach.get("/dashboard/flags").status_code == 302
    assert other_coach.get("/dashboard/flags").status_code == 302
    assert admin.get("/dashboard/audit").status_code == 200  # the admin's own session stays
    assert "sessions.end_all" in admin.get("/dashboard/audit").get_data(as_text=True)
    assert ended_reasons(app, world.ids["coach_a"]) == ["ended_by_admin"]


def test_an_active_session_still_ends_after_the_absolute_timeout(app, world):
    start = datetime.now(UTC)
    with time_machine.travel(start, tick=False) as clock:
        browser = sign_in(app, world)
        for _ in range(12 * 6 - 1):  # a request every 10 minutes, for just under 12 hours
            clock.shift(timedelta(minutes=10))
            assert browser.get("/dashboard/flags").status_code == 200
        clock.shift(timedelta(minutes=11))
        assert browser.get("/dashboard/flags").status_code == 302
    assert ended_reasons(app, world.ids["coach_a"]) == ["expired"]


def test_an_idle_session_ends_on_the_server_not_only_in_the_cookie(app, world):
    """The cookie's own clock (dashboard_seen_at) is the client's to keep; the server's row decides."""
    start = datetime.now(UTC)
    with time_machine.travel(start, tick=False) as clock:
        browser = sign_in(app, world)
        captured = browser.get_cookie("session").value
        clock.shift(timedelta(minutes=16))
        serializer = SecureCookieSessionInterface().get_signing_serializer(app)
        fresh = {**serializer.loads(captured), "dashboard_seen_at": datetime.now(UTC).timestamp()}
        assert replay(app, serializer.dumps(fresh)).get("/dashboard/flags").status_code == 302
    assert ended_reasons(app, world.ids["coach_a"]) == ["idle"]


def test_the_cookie_is_secure_whenever_the_request_came_over_tls(app, world):
    assert app.config["SESSION_COOKIE_SECURE"] is False  # the tests' plain-http setting
    browser = app.test_client()
    page = browser.get("/dashboard/login", base_url="https://dashboard.example.org")
    r = browser.post(
        "/dashboard/login",
        base_url="https://dashboard.example.org",
        headers={"Referer": "https://dashboard.example.org/dashboard/login"},  # CSRF over https checks it
        data={"email": world.emails["coach_a"], "password": PASSWORD, "csrf_token": pages.csrf(page.text)},
    )
    assert r.status_code == 302, r.status_code
    assert "Secure" in r.headers["Set-Cookie"] and "HttpOnly" in r.headers["Set-Cookie"]
    plain = pages.sign_in(app.test_client(), world.emails["coach_a"])
    assert "Secure" not in plain.headers["Set-Cookie"]
