"""schemathesis against the served OpenAPI document, signed in as a member: every response the
server gives must be one the document describes (status, content type, body schema), and no input
may produce a 500.

`positive_data_acceptance` is left out: the document cannot express the rules that need the
database or the clock (a date within the member's backfill window, a dose slot the plan schedules),
so schema-valid bodies are rightly refused with a 422 that names the field."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from tests.conftest import registration

#: Calls that would end the signed-in session mid-run; covered by the account tests instead.
SESSION_ENDING = {("POST", "/api/v1/auth/logout"), ("DELETE", "/api/v1/me")}
EXAMPLES = 12
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


def test_api_conforms_to_its_document(app, client):
    r = client.post("/api/v1/auth/register", json=registration(timezone="Europe/London"))
    headers = {"Authorization": f"Bearer {r.get_json()['access_token']}"}
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    failures: dict[str, str] = {}
    checked = 0
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
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            check()
        except Exception as exc:  # collect every operation's first failure, then report them all
            failures[f"{operation.method.upper()} {operation.path}"] = str(exc)[:1500]
    assert checked >= 20
    assert failures == {}, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
