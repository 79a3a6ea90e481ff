"""schemathesis against the served OpenAPI document, signed in as a member, a coach and an insurer
analyst (each its own run): every response the
server gives must be one the document describes (status, content type, body schema), and no input
may produce a 500.

Two runs, both bounded so the suite fits CI:
- every operation on its own (`EXAMPLES` cases each), with every per-call check, ignored auth and
  unsupported methods included;
- the stateful run: schemathesis chains operations through the links it infers from the document
  (a device registered then deleted, a drink log written then deleted ...) and checks that what was
  deleted is gone (`use_after_free`) and what was just made can be read (`ensure_resource_availability`).

The document has no catch-all "default" response (companion/api.py), so `status_code_conformance`
fails on any status an operation does not list.

`positive_data_acceptance` is left out: the document cannot express the rules that need the
database or the clock (a date within the member's backfill window, a dose slot the plan schedules),
so schema-valid bodies are rightly refused with a 422 that names the field."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    ensure_resource_availability,
    ignored_auth,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
    use_after_free,
)

from tests.conftest import registration

#: Calls that would end the signed-in session mid-run; covered by the account tests instead.
SESSION_ENDING = {("POST", "/api/v1/auth/logout"), ("DELETE", "/api/v1/me")}
EXAMPLES = 12
STATEFUL_SCENARIOS = 25
STATEFUL_STEPS = 8
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    ignored_auth,
    unsupported_method,
]
STATEFUL_CHECKS = [*CHECKS, use_after_free, ensure_resource_availability]
#: What the figures in docs/reliability.md count.
RUN: dict[str, int] = {"cases": 0, "steps": 0}


def _sign_in(app, client) -> dict[str, str]:
    r = client.post("/api/v1/auth/register", json=registration(timezone="Europe/London"))
    return {"Authorization": f"Bearer {r.get_json()['access_token']}"}


def test_documented_statuses_are_explicit(app, client):
    """No "default" response hides an undocumented status; public operations say they need no token."""
    spec = client.get("/api/openapi.json").get_json()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            responses = set(operation["responses"])
            assert "default" not in responses, (method, path)
            assert {"429", "503"} <= responses, (method, path)
            public = operation.get("security") == []
            assert public == (path in {"/api/v1/auth/register", "/api/v1/auth/token", "/api/v1/auth/refresh"})
            if not public:
                assert "401" in responses, (method, path)
            if method in {"post", "put", "patch", "delete"}:
                assert {"400", "413"} <= responses, (method, path)
    assert spec["paths"]["/api/v1/me"]["get"]["responses"].keys() >= {"200", "401", "403"}
    assert "403" not in spec["paths"]["/api/v1/medications"]["get"]["responses"]  # every role may


def _staff_headers(app, staff, role: str) -> dict[str, str]:
    insurer_code = None
    if role == "insurer_analyst":
        import uuid

        from companion import db
        from companion.accounts import services as accounts

        insurer_code = f"F{uuid.uuid4().hex[:6].upper()}"
        with app.app_context(), db.unit_of_work():
            accounts.create_insurer("Fuzzed plan", insurer_code, now=db.utcnow())
    return {"Authorization": f"Bearer {staff(role, insurer_code=insurer_code).token}"}


@pytest.mark.parametrize("role", ["member", "coach", "insurer_analyst"])
def test_api_conforms_to_its_document(app, client, staff, role, record_property):
    """Signed in as each kind of caller (issue 21): every operation, including those the role may not
    call (a documented 403), answers only what the document says."""
    headers = _sign_in(app, client) if role == "member" else _staff_headers(app, staff, role)
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    failures: dict[str, str] = {}
    checked = 0
    cases = [0]
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SESSION_ENDING:
            continue
        checked += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def check(case):
            RUN["cases"] += 1
            cases[0] += 1
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            check()
        except Exception as exc:  # collect every operation's first failure, then report them all
            failures[f"{operation.method.upper()} {operation.path}"] = str(exc)[:1500]
    assert checked >= 20
    assert cases[0] >= checked * 3
    record_property("operations", checked)
    record_property("cases", RUN["cases"])
    assert failures == {}, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())


def test_stateful_sequences_conform_and_deleted_records_are_gone(app, client, record_property):
    headers = _sign_in(app, client)
    schema = (
        schemathesis.openapi.from_wsgi("/api/openapi.json", app)
        .exclude(method="POST", path="/api/v1/auth/logout")
        .exclude(method="DELETE", path="/api/v1/me")
    )
    base = schema.as_state_machine()

    class Member(base):  # type: ignore[misc,valid-type]
        def get_call_kwargs(self, case):
            return {"headers": headers}

        def step(self, input):
            RUN["steps"] += 1
            return super().step(input)

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(
                response,
                checks=STATEFUL_CHECKS,
                headers=headers,  # our token, not one schemathesis generated (for `ignored_auth`)
                transport_kwargs=kwargs or None,
                recorder=self.recorder,
            )

    Member.run(
        settings=settings(
            max_examples=STATEFUL_SCENARIOS,
            stateful_step_count=STATEFUL_STEPS,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
    )
    assert RUN["steps"] >= STATEFUL_SCENARIOS
    record_property("steps", RUN["steps"])
