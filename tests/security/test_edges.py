"""Security edges not covered elsewhere: response headers on JSON and HTML, HSTS behind TLS, no email in
the rate limiter's keys (they are logged and kept in Redis), every login of an erased account ends.

Covered elsewhere (docs/reliability.md lists them): token expiry, logout and refresh-reuse revocation,
account deletion and sign-in limits in tests/api/test_accounts.py; dashboard cookie flags, idle timeout,
CSRF and sign-in limits in tests/dashboard/test_pages.py; push payloads in tests/nudges/test_payloads.py.
"""

from __future__ import annotations

from tests.conftest import PASSWORD, Api, registration


def _common(response) -> None:
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_api_answers_carrying_personal_data_are_never_cached(register):
    member = register()
    member.put("/drink-logs/2026-01-01", {"standard_drinks": 1})
    for response in (
        member.get("/me"),
        member.get("/me/export"),
        member.get("/drink-logs"),
        member.get("/nowhere"),
    ):
        _common(response)
        assert response.headers["Cache-Control"] == "no-store", response.request.path
        assert "Strict-Transport-Security" not in response.headers  # plain http: a header browsers ignore


def test_html_pages_have_a_strict_content_security_policy(client):
    for path in ("/dashboard/login", "/api/docs"):
        response = client.get(path)
        assert response.status_code == 200 and response.mimetype == "text/html", path
        _common(response)
        policy = {
            part.split()[0]: part.split()[1:]
            for part in response.headers["Content-Security-Policy"].split("; ")
        }
        assert policy["default-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"], policy
        assert policy["script-src"] == ["'self'"] and policy["base-uri"] == ["'none'"], policy
    assert "Content-Security-Policy" not in client.get("/healthz").headers  # JSON: nothing to run


def test_hsts_behind_tls(client):
    response = client.get("/healthz", base_url="https://companion.example.org")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


def test_the_rate_limiter_and_the_sign_in_counts_never_keep_an_email(app, api, register, redis):
    from sqlalchemy import select

    from companion import db
    from companion.accounts.throttle import SignInCounter

    email = register().body["member"]["email"]
    for _ in range(3):
        assert api.post("/auth/token", {"email": email, "password": "not the password"}).status_code == 401
    keys = [key.decode() for key in redis.scan_iter("*")]
    assert any("companion-rl/" in key for key in keys), keys
    with app.app_context():
        keys += db.session.scalars(select(SignInCounter.key)).all()
    assert any(key.startswith("account:") for key in keys), keys
    assert not [key for key in keys if "@" in key or email.split("@")[0] in key], keys


def test_erasing_the_account_ends_every_login(client, register):
    member = register()
    email = member.body["member"]["email"]
    other_login = Api(client).post("/auth/token", {"email": email, "password": PASSWORD}).get_json()
    assert member.delete("/me", {"password": PASSWORD}).status_code == 202
    assert Api(client, other_login["access_token"]).get("/me").status_code == 401
    assert (
        Api(client).post("/auth/refresh", {"refresh_token": other_login["refresh_token"]}).status_code == 401
    )


def test_a_registration_cannot_choose_its_role(api):
    for field, value in (("role", "admin"), ("coach_id", "x"), ("insurer_id", "x")):
        r = api.post("/auth/register", registration(**{field: value}))
        assert r.status_code == 422 and field in r.get_json()["error"]["fields"], r.get_json()
