"""schemathesis against the served OpenAPI document: every response the server gives must be one the
document describes (status, content type, body schema), and no input may produce a 500.

Two runs, both bounded so the suite fits CI:
- every operation on its own (`EXAMPLES` cases each), with every per-call check, ignored auth and
  unsupported methods included: signed in as a member over every operation, then as a coach (with a
  member on the caseload) and as an insurer analyst over the operations their role may call;
- the stateful run: schemathesis chains operations through the links it infers from the document
  (a device registered then deleted, a drink log written then deleted ...) and checks that what was
  deleted is gone (`use_after_free`) and what was just made can be read (`ensure_resource_availability`).

The document has no catch-all "default" response (companion/openapi.py), so `status_code_conformance`
fails on any status an operation does not list.

`positive_data_acceptance` is left out: the document cannot express the rules that need the
database or the clock (a date within the member's backfill window, a dose slot the plan schedules),
so schema-valid bodies are rightly refused with a 422 that names the field.

`negative_data_rejection` is left out for `POST /sync` only: its items are documented as a oneOf by
`type`, but API.md has the batch answer 200 with a per-item `invalid` result for an item that fits
none ("each item stands alone; a bad item never spoils the others"), which tests/api/test_sync.py
checks; the batch's own shape (no `items`, more than 500) is still refused."""

from __future__ import annotations

import uuid

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
from schemathesis.config import SchemathesisConfig

from companion import db
from companion.accounts import services as accounts
from companion.auth.access import declared_access
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
#: Invalid data rejected with our 414 (a request target over 4 KiB: a fuzzed query can be that long) or
#: 431 (headers) is rejected too: schemathesis' default list of rejections lacks them.
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "negative_data_rejection": {
                "expected-statuses": [
                    "400", "401", "403", "404", "405", "406", "409", "414", "415", "422", "428", "429", "431",
                    "5xx",
                ]
            }
        }
    }
)  # fmt: skip
#: What the figures in docs/reliability.md count.
RUN: dict[str, int] = {"cases": 0, "steps": 0}


#: POST /sync answers 200 for items that fit no documented type (see the module's docstring).
PER_ITEM_VALIDATION = {("POST", "/api/v1/sync")}


def _sign_in(app, client) -> dict[str, str]:
    r = client.post("/api/v1/auth/register", json=registration(timezone="Europe/London"))
    return {"Authorization": f"Bearer {r.get_json()['access_token']}"}


def _sign_in_as(role: str, app, client, staff) -> dict[str, str]:
    if role == "member":
        return _sign_in(app, client)
    if role == "coach":
        coach = staff("coach")
        member = client.post("/api/v1/auth/register", json=registration()).get_json()["member"]
        with app.app_context(), db.unit_of_work():
            accounts.assign_coach(member["email"], coach.email, now=db.utcnow())
        return {"Authorization": f"Bearer {coach.token}"}
    code = f"PLAN-{uuid.uuid4().hex[:6]}"
    with app.app_context(), db.unit_of_work():
        accounts.create_insurer("Fuzz Health", code, now=db.utcnow())
    return {"Authorization": f"Bearer {staff('insurer_analyst', insurer_code=code).token}"}


def _may_call(app, role: str, method: str, path: str) -> bool:
    """Whether the route behind a documented operation lets `role` in (its @allow declaration)."""
    concrete = path.replace("{day}", "2026-01-01")
    while "{" in concrete:
        start, end = concrete.index("{"), concrete.index("}")
        concrete = concrete[:start] + str(uuid.uuid4()) + concrete[end + 1 :]
    endpoint, _ = app.url_map.bind("localhost").match(concrete, method)
    return role in {str(getattr(r, "value", r)) for r in declared_access(app, endpoint, method) or ()}


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


def _checker(operation, headers: dict[str, str], checks: list):
    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case):
        RUN["cases"] += 1
        case.call_and_validate(headers=headers, checks=checks)

    return check


@pytest.mark.parametrize("role", ["member", "coach", "insurer_analyst"])
def test_api_conforms_to_its_document(app, client, staff, record_property, role):
    headers = _sign_in_as(role, app, client, staff)
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app, config=CONFIG)
    failures: dict[str, str] = {}
    checked = 0
    cases_before = RUN["cases"]
    for result in schema.get_all_operations():
        operation = result.ok()
        key = (operation.method.upper(), operation.path)
        if key in SESSION_ENDING:
            continue
        if role != "member" and not _may_call(app, role, *key):
            continue  # their 403 is checked in the member's run and by tests/security
        checked += 1
        checks = [c for c in CHECKS if not (key in PER_ITEM_VALIDATION and c is negative_data_rejection)]
        check = _checker(operation, headers, checks)
        try:
            check()
        except Exception as exc:  # collect every operation's first failure, then report them all
            failures[f"{operation.method.upper()} {operation.path}"] = str(exc)[:1500]
    assert checked >= {"member": 20, "coach": 10, "insurer_analyst": 4}[role]
    assert RUN["cases"] - cases_before >= checked * 3
    record_property("operations", checked)
    record_property("cases", RUN["cases"] - cases_before)
    assert failures == {}, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())


def test_stateful_sequences_conform_and_deleted_records_are_gone(app, client, record_property):
    schema = (
        schemathesis.openapi.from_wsgi("/api/openapi.json", app, config=CONFIG)
        .exclude(method="POST", path="/api/v1/auth/logout")
        .exclude(method="DELETE", path="/api/v1/me")
    )
    base = schema.as_state_machine()

    registered = iter(range(1, 10_000))

    class Member(base):  # type: ignore[misc,valid-type]  # schemathesis builds the state machine class at run time
        def setup(self):
            # A new member for each scenario: a scenario's links (a device, a drink log just made) start
            # from the same empty account every time, so Hypothesis can replay what it generated.
            n = next(registered)
            address = {"REMOTE_ADDR": f"10.250.{n // 250}.{n % 250 + 1}"}  # registration is rate-limited
            r = client.post(
                "/api/v1/auth/register", json=registration(timezone="Europe/London"), environ_base=address
            )
            self.headers = {"Authorization": f"Bearer {r.get_json()['access_token']}"}

        def get_call_kwargs(self, case):
            return {"headers": self.headers}

        def step(self, input):
            RUN["steps"] += 1
            return super().step(input)

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(
                response,
                checks=STATEFUL_CHECKS,
                headers=self.headers,  # our token, not one schemathesis generated (for `ignored_auth`)
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
