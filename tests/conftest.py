"""Fixtures: a real PostgreSQL built by the migrations, a real Redis, and the app on top of them."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis as redis_lib
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from companion import db, migrate, runtime
from companion.app import create_app
from companion.config import Config
from companion.models import Base
from tests import services as test_services

_addresses = itertools.count(1)


@pytest.fixture(scope="session", autouse=True)
def _suite_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every log record of the session, as the app formats it, in a file; at the end it must hold no
    personal data (tests/security/logscan.py). A finding fails the session's last test."""
    import logging

    from companion.logs import JsonFormatter
    from tests.security import logscan

    path = tmp_path_factory.getbasetemp() / "suite.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(JsonFormatter())
    handler.setLevel(logging.DEBUG)
    logging.getLogger().addHandler(handler)
    yield
    logging.getLogger().removeHandler(handler)
    handler.close()
    found = logscan.findings(path.read_text(encoding="utf-8"))
    assert found == [], f"personal data in the suite's logs ({path}):\n" + "\n".join(found)


@pytest.fixture(scope="session")
def servers() -> Iterator[test_services.TestServices]:
    yield test_services.start()


@pytest.fixture(scope="session")
def database_url(servers: test_services.TestServices) -> Iterator[str]:
    url = servers.database_url(test_services.database_name())
    runtime.ensure_database(url, recreate=True)
    migrate.upgrade(url)
    yield url
    runtime.drop_database(url)


@pytest.fixture(scope="session")
def redis_url(servers: test_services.TestServices) -> Iterator[str]:
    number = test_services.claim_redis_db(servers)
    yield servers.redis_url(number)
    test_services.release_redis_db(servers, number)


@pytest.fixture(scope="session")
def config(database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Config:
    return Config.from_env(
        database_url=database_url,
        redis_url=redis_url,
        secret_key="test-secret",
        instance_path=str(tmp_path_factory.mktemp("instance")),
        session_cookie_secure=False,
        log_level="INFO",
        # Tests make many calls per member quickly; the limit tests set their own tight limits.
        ratelimit_default="100000 per minute",
    )


@pytest.fixture(scope="session")
def app(config: Config) -> Iterator[Flask]:
    app = create_app(config)
    app.config["TESTING"] = True
    yield app
    db.session.remove()
    app.extensions["engine"].dispose()


@pytest.fixture
def redis(redis_url: str) -> Iterator[redis_lib.Redis]:
    client = redis_lib.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture(autouse=True)
def _clean_state(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test starts from empty tables and an empty Redis database (rate limits, queues)."""
    if "app" not in request.fixturenames:
        yield
        return
    app: Flask = request.getfixturevalue("app")
    redis_client = redis_lib.Redis.from_url(app.config["REDIS_URL"])
    redis_client.flushdb()
    redis_client.close()
    yield
    db.session.remove()
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with app.extensions["engine"].begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client with its own address, so per-address rate limits never leak between tests."""
    n = next(_addresses)
    test_client = app.test_client()
    test_client.environ_base["REMOTE_ADDR"] = f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"
    return test_client


class Api:
    """A small JSON client for /api/v1, holding a bearer token when signed in."""

    #: Set by the fixtures that sign in: `register`'s 201 answer, `staff`'s email.
    body: Any
    email: str

    def __init__(self, client: FlaskClient, token: str | None = None):
        self.client = client
        self.token = token

    def _headers(self, headers: dict[str, str] | None) -> dict[str, str]:
        merged = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        merged.update(headers or {})
        return merged

    def call(
        self, method: str, path: str, json: Any = None, headers: dict[str, str] | None = None, **kw: Any
    ):
        url = path if path.startswith(("/api/", "/healthz", "/readyz")) else "/api/v1" + path
        return self.client.open(url, method=method, json=json, headers=self._headers(headers), **kw)

    def get(self, path: str, **kw: Any):
        return self.call("GET", path, **kw)

    def post(self, path: str, json: Any = None, **kw: Any):
        return self.call("POST", path, json=json, **kw)

    def put(self, path: str, json: Any = None, **kw: Any):
        return self.call("PUT", path, json=json, **kw)

    def patch(self, path: str, json: Any = None, **kw: Any):
        return self.call("PATCH", path, json=json, **kw)

    def delete(self, path: str, json: Any = None, **kw: Any):
        return self.call("DELETE", path, json=json, **kw)


@pytest.fixture
def api(client: FlaskClient) -> Api:
    return Api(client)


PASSWORD = "correct horse battery"


def registration(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "email": f"member-{uuid.uuid4().hex[:10]}@example.org",
        "password": PASSWORD,
        "timezone": "America/New_York",
        "goal": {"type": "abstain"},
    }
    body.update(overrides)
    return body


@pytest.fixture
def register(client: FlaskClient):
    """Register a member through the API; returns an Api signed in as them, with `.body` the 201 answer."""

    def make(**overrides: Any) -> Api:
        response = Api(client).post("/auth/register", registration(**overrides))
        assert response.status_code == 201, response.get_json()
        signed_in = Api(client, response.get_json()["access_token"])
        signed_in.body = response.get_json()
        return signed_in

    return make


@pytest.fixture
def staff(app: Flask, client: FlaskClient):
    """Create a staff account with the service the command line uses; returns an Api signed in as them."""
    from companion.accounts import services
    from companion.accounts.models import Role

    def make(role: str, *, insurer_code: str | None = None, email: str | None = None) -> Api:
        email = email or f"{role}-{uuid.uuid4().hex[:8]}@staff.example.org"
        with app.app_context(), db.unit_of_work():
            services.create_staff(Role(role), email, PASSWORD, insurer_code=insurer_code, now=db.utcnow())
        response = Api(client).post("/auth/token", {"email": email, "password": PASSWORD})
        assert response.status_code == 200, response.get_json()
        signed_in = Api(client, response.get_json()["access_token"])
        signed_in.email = email
        return signed_in

    return make
