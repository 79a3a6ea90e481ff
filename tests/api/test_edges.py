"""The edges of the contract (API.md "Conventions"): one error envelope, bodies, limits, auth channels."""

from __future__ import annotations

import json
import logging
import socket

import pytest

from companion.auth.access import declared_access
from companion.logs import JsonFormatter
from tests.conftest import PASSWORD, registration
from tests.isolated import run_app_script


def _envelope(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert error["status"] == status and error["code"] == code and error["message"]
    return error


def test_unknown_route_is_404_envelope(api):
    _envelope(api.get("/api/v1/nothing-here"), 404, "not_found")
    _envelope(api.get("/not-even-api"), 404, "not_found")


def test_wrong_method_is_405_envelope(api):
    r = api.call("PUT", "/auth/token", json={})
    _envelope(r, 405, "method_not_allowed")
    assert "POST" in r.headers["Allow"]


def test_unexpected_error_is_500_envelope_without_details(monkeypatch, register):
    from companion.accounts import services

    member = register()

    def explode(user):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(services, "member_view", explode)
    r = member.get("/me")
    error = _envelope(r, 500, "internal_error")
    assert "secret internals" not in r.get_data(as_text=True)
    assert "fields" not in error


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        ("{not json", "application/json"),
        ("[1, 2]", "application/json"),
        ('"a string"', "application/json"),
        ("null", "application/json"),
        ("email=a@b.c", "application/x-www-form-urlencoded"),
        ('{"email": "a@b.c"}', "text/plain"),
        (b"\xff\xfe\x00garbage", "application/json"),
    ],
)
def test_non_json_body_is_400(client, data, content_type):
    r = client.post("/api/v1/auth/register", data=data, content_type=content_type)
    _envelope(r, 400, "invalid_json")


def test_body_over_one_mebibyte_is_413(client):
    body = json.dumps({"email": "a@b.c", "password": "x" * (1024 * 1024)})
    r = client.post("/api/v1/auth/register", data=body, content_type="application/json")
    _envelope(r, 413, "payload_too_large")


def test_a_body_shorter_than_its_content_length_is_refused_and_stores_nothing(client):
    """A connection that ends before the body its Content-Length announced: a 400, as werkzeug's own read
    answers it, even when what did arrive is valid JSON (it is not what the client meant to send)."""
    body = json.dumps(registration()).encode()
    r = client.post(
        "/api/v1/auth/register", data=body, content_type="application/json",
        environ_overrides={"CONTENT_LENGTH": str(len(body) + 10)},
    )  # fmt: skip
    assert r.status_code == 400 and r.get_json()["error"]["status"] == 400
    assert client.post("/api/v1/auth/register", data=body, content_type="application/json").status_code == 201


def test_validation_error_names_fields(api):
    error = _envelope(api.post("/auth/register", {"email": "x", "surprise": 1}), 422, "invalid_payload")
    assert "email" in error["fields"] and "surprise" in error["fields"]
    assert all(isinstance(messages, list) and messages for messages in error["fields"].values())


def test_every_route_declares_who_may_call_it(app):
    undeclared = []
    for rule in app.url_map.iter_rules():
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            if declared_access(app, rule.endpoint, method) is None:
                undeclared.append(f"{method} {rule.rule}")
    assert undeclared == []


def test_a_route_without_declaration_is_refused():
    from flask import Flask

    from companion.auth.access import enforce_access
    from companion.domain.errors import Forbidden

    app = Flask(__name__)
    app.before_request(enforce_access)

    @app.get("/open-by-mistake")
    def open_by_mistake():
        return "should never be served"

    @app.errorhandler(Forbidden)
    def _forbidden(_e):
        return "refused", 403

    assert app.test_client().get("/open-by-mistake").status_code == 403


def test_bearer_requests_never_get_a_cookie(register):
    member = register()
    for r in (member.get("/me"), member.patch("/me", {"display_name": "Robin"})):
        assert r.status_code == 200
        assert "Set-Cookie" not in r.headers


def test_a_session_cookie_never_authenticates_the_api(app, register):
    member = register()
    client = app.test_client()
    with client.session_transaction() as sess:
        sess["_user_id"] = f"{member.body['member']['id']}:0"
        sess["_fresh"] = True
    r = client.get("/api/v1/me")
    _envelope(r, 401, "unauthenticated")


def test_security_headers(api):
    r = api.get("/healthz")
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["X-Frame-Options"] == "DENY"


def test_request_id_is_returned_and_propagated(api):
    assert len(api.get("/healthz").headers["X-Request-ID"]) == 32
    r = api.get("/healthz", headers={"X-Request-ID": "abcdef0123456789"})
    assert r.headers["X-Request-ID"] == "abcdef0123456789"


def test_logs_are_json_with_request_id_and_no_personal_data(caplog, api):
    caplog.set_level(logging.INFO)
    email = "very-personal-address@example.org"
    body = registration(email=email, display_name="Personal Name")
    assert api.post("/auth/register", body).status_code == 201
    api.post("/auth/token", {"email": email, "password": "wrong password!"})
    formatter = JsonFormatter()
    lines = [formatter.format(record) for record in caplog.records]
    assert lines
    entries = [json.loads(line) for line in lines]
    access = [e for e in entries if e["logger"] == "companion.access"]
    assert {e["status"] for e in access} == {201, 401}
    assert all(e.get("request_id") for e in access)
    text = "\n".join(lines)
    for secret in (email, "Personal Name", PASSWORD, "wrong password!"):
        assert secret not in text


def test_openapi_document(api):
    r = api.get("/api/openapi.json")
    assert r.status_code == 200
    spec = r.get_json()
    assert spec["openapi"] == "3.1.0"
    paths = spec["paths"]
    expected = {
        "/api/v1/auth/register": {"post"},
        "/api/v1/auth/token": {"post"},
        "/api/v1/auth/refresh": {"post"},
        "/api/v1/auth/logout": {"post"},
        "/api/v1/me": {"get", "patch", "delete"},
        "/api/v1/me/export": {"get"},
        "/api/v1/me/devices": {"get", "post"},
        "/api/v1/me/devices/{device_id}": {"delete"},
    }
    for path, methods in expected.items():
        assert methods <= set(paths[path]), path
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    register = paths["/api/v1/auth/register"]["post"]
    assert {"201", "409", "422", "429"} <= set(register["responses"])
    register_schema = spec["components"]["schemas"]["Register"]
    assert {"email", "password", "timezone", "goal"} <= set(register_schema["required"])
    assert "ErrorBody" in spec["components"]["schemas"] or "Error" in spec["components"]["schemas"]


def test_docs_page_and_its_local_assets(api):
    page = api.get("/api/docs")
    assert page.status_code == 200 and b"swagger-ui" in page.data
    assert b"http" not in page.data.split(b"<body>")[1]  # nothing fetched from elsewhere
    bundle = api.get("/api/docs/assets/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and len(bundle.data) > 100_000


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_redis_down_never_500s_and_readyz_says_so(database_url):
    out = run_app_script(
        """
        import uuid
        body = {"email": f"m-{uuid.uuid4().hex}@example.org", "password": "long enough pw",
                "timezone": "UTC", "goal": {"type": "abstain"}}
        r = client.post("/api/v1/auth/register", json=body)
        out["register"] = r.status_code
        token = r.get_json()["access_token"]
        out["me"] = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code
        wrong = {"email": body["email"], "password": "wrong!!!!!!"}
        out["login"] = [client.post("/api/v1/auth/token", json=wrong).status_code
                        for _ in range(7)]
        r = client.get("/readyz")
        out["readyz"] = r.status_code
        out["checks"] = r.get_json()["checks"]
        """,
        env={"DATABASE_URL": database_url, "REDIS_URL": f"redis://127.0.0.1:{_closed_port()}/0"},
    )
    assert out["register"] == 201 and out["me"] == 200
    # The limiter falls back to per-process counting: still a 429, never a 500.
    assert set(out["login"]) <= {401, 429} and 429 in out["login"]
    assert out["readyz"] == 503
    assert out["checks"] == {"postgresql": "ok", "redis": "down", "worker": "unknown", "beat": "unknown"}


def test_postgres_down_readyz_503(redis_url):
    out = run_app_script(
        """
        out["readyz"] = client.get("/readyz").status_code
        out["healthz"] = client.get("/healthz").status_code
        login = {"email": "a@b.c", "password": "xxxxxxxxxxxx"}
        out["token"] = client.post("/api/v1/auth/token", json=login).status_code
        """,
        env={
            "DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/x",
            "REDIS_URL": redis_url,
        },
    )
    assert out == {"readyz": 503, "healthz": 200, "token": 503}


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/auth/token", {"email": "a\x00@example.org", "password": "whatever-long"}, "email"),
        (
            "/auth/register",
            {
                "email": "a@example.org",
                "password": "x\x00" * 6,
                "timezone": "UTC",
                "goal": {"type": "abstain"},
            },
            "password",
        ),
        (
            "/auth/register",
            {
                "email": "b@example.org",
                "password": "long enough",
                "timezone": "UTC",
                "goal": {"type": "abstain"},
                "display_name": "Ro\x00bin",
            },
            "display_name",
        ),
    ],
)
def test_nul_characters_are_422_not_500(api, path, body, field):
    r = api.post(path, body)
    assert r.status_code == 422, r.get_json()
    assert field in r.get_json()["error"]["fields"]


def test_a_pooled_connection_killed_while_idle_is_replaced_not_a_failed_request(app, register, monkeypatch):
    """companion.db pings a connection idle for PING_AFTER_IDLE_SECONDS before use (what a PostgreSQL
    restart leaves behind); one used more recently goes without the round trip."""
    import sqlalchemy as sa

    from companion import db as db_module

    member = register()
    assert member.get("/me").status_code == 200
    engine = app.extensions["engine"]
    with sa.create_engine(engine.url, poolclass=sa.pool.NullPool).connect() as killer:
        killer.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE_SECONDS", 0.0)
    assert member.get("/me").status_code == 200  # the dead connection was pinged and replaced
