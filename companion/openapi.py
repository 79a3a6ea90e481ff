"""The OpenAPI document: every operation's standard errors with realistic examples, operation ids, our
marshmallow-to-OpenAPI rules (required fields, common descriptions, examples), bounded string parameters,
and the document's settings. The API's plumbing itself is `companion.api`."""

from __future__ import annotations

from typing import Any

from apispec import BasePlugin
from apispec.ext.marshmallow import MarshmallowPlugin, OpenAPIConverter
from flask import Flask

from companion.api import BODY_METHODS
from companion.auth.access import PUBLIC, declared_access
from companion.errors import CODES, MESSAGES
from companion.validation import (
    FIELD_ERRORS_SCHEMA,
    StrictSchema,
)

ERROR_REF = {"$ref": "#/components/schemas/Error"}


ALL_ROLES = frozenset({"member", "coach", "admin", "insurer_analyst"})


#: The errors any operation can answer, from plumbing that runs before or around its view.
STANDARD_ERRORS = {
    400: "The body is not a JSON object (`invalid_json`).",
    401: "No valid access token: missing, unknown, expired or revoked (`unauthenticated`).",
    403: "Signed in, but this role may not call this (`forbidden`).",
    404: "No such record, or not yours to see (`not_found`).",
    413: "The body is over 1 MiB, chunked or not (`payload_too_large`).",
    414: "The request target (path and query) is over 4 KiB (`uri_too_long`).",
    422: "An argument is invalid; `error.fields` names each one, unknown ones included.",
    429: "Too many requests (`rate_limited`); see `Retry-After`.",
    431: "A header is over 8 KiB, or there are more than 100 (`headers_too_large`).",
    503: "PostgreSQL is unreachable (`unavailable`); retry after `Retry-After` seconds.",
}


#: What each error status adds to the envelope in its example, beside its own code and message.
_EXAMPLE_EXTRAS: dict[int, dict[str, Any]] = {
    409: {"message": "A newer version of this day's log is stored."},
    422: {"fields": {"intensity": ["Must be greater than or equal to 0 and less than or equal to 10."]}},
}


#: The headers an error status carries (API.md): `Retry-After` on 429 and 503 only.
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 0},
    }
}


def error_example(status: int) -> dict[str, Any]:
    """A realistic envelope of one error status: its own code and the message the server sends."""
    body = {"status": status, "code": CODES[status], "message": MESSAGES[status]}
    body.update(_EXAMPLE_EXTRAS.get(status, {}))
    return {"error": body}


def error_response_doc(status: int, description: str) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": ERROR_REF, "example": error_example(status)}},
    }
    if status in (429, 503):
        doc["headers"] = _RETRY_AFTER
    return doc


def operation_id(endpoint: str, method: str, is_class: bool) -> str:
    """Derived from the view: a function's name (`remove_device` -> `removeDevice`); for a MethodView,
    the HTTP verb and the class (`Cravings.get` -> `listCravings`, `Cravings.post` -> `createCraving`).
    A view whose name reads badly as an operation says its own with `@blp.doc(operationId=...)`."""
    name = endpoint.rsplit(".", 1)[-1]
    if not is_class:
        head, *rest = name.split("_")
        return head + "".join(part.title() for part in rest)
    plural = name.endswith("s")
    verb = {"get": "list" if plural else "get", "post": "create", "put": "put", "patch": "update"}.get(
        method, method
    )
    noun = name[:-1] if plural and method != "get" else name
    return verb + noun


class StandardResponsesPlugin(BasePlugin):
    """Write into each operation the errors our plumbing gives it, from what the route declares: who
    may call it (401/403, `security: []` when public), its body (400/413), its arguments (422), its
    record ids in the path (404); every operation may be rate limited (429) and needs PostgreSQL (503).
    Every error response carries the envelope's schema and an example of its own code; every operation
    gets an `operationId` (operation_id)."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.spec: Any = None

    def init_spec(self, spec: Any) -> None:
        self.spec = spec

    def _body_example(self, operation: dict[str, Any]) -> None:
        """The request body's example: its schema's (CompanionConverter puts a schema's EXAMPLE there)."""
        for media in operation.get("requestBody", {}).get("content", {}).values():
            ref = media.get("schema", {}).get("$ref", "")
            component = self.spec.components.schemas.get(ref.rsplit("/", 1)[-1], {})
            if "example" in component:
                media.setdefault("example", component["example"])

    def path_helper(self, path=None, operations=None, parameters=None, **kwargs: Any) -> None:
        for parameter in parameters or ():
            _bound_string(parameter)

    def operation_helper(self, path=None, operations=None, **kwargs: Any) -> None:
        rule = kwargs.get("rule")
        if rule is None or not operations:
            return
        view = self.app.view_functions.get(rule.endpoint)
        is_class = getattr(view, "view_class", None) is not None
        for method, operation in operations.items():
            operation.setdefault("operationId", operation_id(rule.endpoint, method, is_class))
            self._body_example(operation)
            for parameter in operation.get("parameters", ()):
                _bound_string(parameter)
            statuses = {414, 429, 431, 503}
            roles = {
                str(getattr(r, "value", r))
                for r in declared_access(self.app, rule.endpoint, method.upper()) or ()
            }
            if PUBLIC in roles:
                operation["security"] = []
            else:
                statuses.add(401)
                if not roles >= ALL_ROLES:
                    statuses.add(403)
            if method.upper() in BODY_METHODS:
                statuses |= {400, 413}
            if "requestBody" in operation or any(
                p.get("in") == "query" for p in operation.get("parameters", [])
            ):
                statuses.add(422)
            for converter in rule._converters.values():
                statuses.add(404 if type(converter).__name__ == "UUIDConverter" else 422)
            responses = operation.setdefault("responses", {})
            for status in sorted(statuses):
                if str(status) not in responses and status not in responses:
                    responses[str(status)] = error_response_doc(status, STANDARD_ERRORS[status])
            for status, response in list(responses.items()):
                code = int(status)
                if code < 400 or "content" in response:
                    continue
                if isinstance(response, str) or "$ref" in response:  # flask-smorest's shared 422
                    responses[status] = error_response_doc(code, STANDARD_ERRORS[code])
                else:
                    response.update(error_response_doc(code, response.get("description", "")))


#: Descriptions of the fields that mean the same wherever they appear; a field's own `description`
#: metadata wins. Every property of the document has one (tests/contract/test_openapi_document.py).
COMMON_DESCRIPTIONS = {
    "id": "The record's UUID (made on the phone for what the phone records).",
    "items": "The records of this page, oldest first unless the call says otherwise.",
    "next_cursor": "Pass as `cursor` to get the next page; null on the last page.",
    "created_at": "When the server stored it (UTC).",
    "updated_at": "When it last changed (UTC).",
    "date": "The member's local calendar date.",
    "note": "Free text from the person who wrote it (at most 1000 characters).",
    "member_id": "The member's id.",
    "display_name": "The name shown to others; null when none is set.",
    "timezone": "An IANA time zone, such as America/New_York; the member's local dates follow it.",
    "country": "ISO 3166-1 alpha-2; it sets the size of a standard drink (US 14 g, UK 8 g ...).",
    "sex": "female, male or unspecified; it sets the heavy-day threshold (DOMAIN.md).",
    "email": "The account's email address.",
    "password": "The account's password (never answered back).",
    "medication": "The medication's catalogue code (GET /medications).",
    "dose_mg": "The dose in milligrams.",
    "times": 'Local dose times, "HH:MM" on the 24-hour clock.',
    "severity": "How bad: mild, moderate or severe.",
    "code": "A stable machine-readable code.",
    "kind": "What sort of entry this is.",
    "status": "Where the record stands (see the enum).",
    "body": "The text of the message.",
    "title": "A short title for the notification.",
    "summary": "The member's summary, as GET /me/summary answers it.",
    "start": "The first month, YYYY-MM (inclusive).",
    "end": "The last month, YYYY-MM (inclusive).",
    "goal": "The member's drinking goal.",
    "type": "Which kind of record or goal this is (see the enum).",
    "error": "The error: its status, code, message and, where they apply, fields and the stored record.",
    "enrollment_code": "The code of the member's insurer plan, from their enrollment letter; optional.",
    "consents": "What the member agreed to share.",
    "reminders": "When and how the member wants to be nudged.",
    "quiet_hours": "Local hours without nudges (start to end, may wrap past midnight); null: none.",
    "muted_kinds": "Nudge kinds the member turned off (coach messages cannot be muted).",
    "name": "The display name.",
    "role": "The account's role: member, coach, admin or insurer_analyst.",
    "coach": "The member's coach; null when none is assigned.",
    "insurer": "The member's insurer plan; null when not enrolled through one.",
    "enrolled_at": "When the member registered (UTC).",
    "token_type": "Always `Bearer`.",
    "access_token": "Send as `Authorization: Bearer <token>` until `expires_at`.",
    "refresh_token": "Spend once at POST /auth/refresh for a new pair; a second use revokes the login.",
    "refresh_expires_at": "When the refresh token expires (UTC).",
    "platform": "ios or android.",
    "push_token": "The FCM or APNs token of the phone.",
    "active": "Still used for pushes (a token the push service refused is turned off).",
    "last_seen_at": "When this phone last registered its token (UTC).",
    "volume_ml": "The drink's volume in millilitres (1-2000).",
    "abv_percent": "Alcohol by volume, percent (0-100).",
    "count": "How many of this drink (at least 1).",
    "drinks": "The drinks, each with its volume and strength; null when only a total was logged.",
    "standard_drinks": "Standard drinks in the member's country's size (US 14 g, UK 8 g ...).",
    "grams_ethanol": "Grams of pure ethanol (0.789 g/ml): the record the other figures come from.",
    "source": "`realtime`, or `recall` when entered after the next local day.",
    "recorded_at": "When the craving was felt (an instant; not in the future, at most 60 days ago).",
    "intensity": "How strong, 0 (none) to 10 (the strongest).",
    "triggers": "What set it off, in the member's words (at most 10, each up to 40 characters).",
    "measured_at": "When the breath was measured (an instant).",
    "bac_g_dl": "Blood alcohol concentration estimated from breath, g/dL (0.000-0.500).",
    "device": "The breathalyzer, when the phone knows it; null otherwise.",
    "model": "The breathalyzer's model name.",
    "serial": "The breathalyzer's serial number.",
    "changes": "Changed records, oldest first, each with its `type`.",
    "cursor": "Pass as `since` next time.",
    "results": "One result per item, in the batch's order.",
    "data": "The record, as its own GET answers it.",
    "label": "A plain-language name to show the member.",
    "drug_class": "The drug's class (for example opioid antagonist).",
    "side_effects": "Side effects reported with the dose, each with a severity.",
    "from_date": "The step's first local date; the regimen changes from then on.",
    "start_date": "The plan's first local date.",
    "end_date": "The plan's last local date (inclusive); null: open-ended.",
    "steps": "A titration or taper: each step replaces the regimen from its `from_date` on.",
    "plan_id": "The medication plan the dose belongs to.",
    "scheduled_for": "The dose slot: one of the plan's times on a local day, as an instant (UTC).",
    "taken_at": "When the dose was taken; null when skipped.",
    "format": "The file's format: csv, json or fhir.",
    "period": "The months the export covers.",
    "breakdown": "The breakdowns beside the total: medication, program_month or goal_type.",
    "finished_at": "When the export finished or failed; null before.",
    "rule": "The safety rule that raised the flag (DOMAIN.md).",
    "rule_version": "The version of the rule's code that raised it.",
    "acknowledged_by": "The coach who acknowledged it; null before.",
    "acknowledged_at": "When it was acknowledged; null before.",
    "resolved_by": "The coach who resolved it; null before.",
    "resolved_at": "When it was resolved; null before.",
    "resolution_note": "What the coach did, written when resolving; null before.",
    "assigned_coach_id": "The coach whose queue it is in; null when routed to the admins.",
    "read_at": "When the member read it; null while unread.",
    "minutes": "How long to snooze, 10 to 240 minutes.",
    "sender_id": "The coach who wrote it; null when the account is gone.",
}


class CompanionConverter(OpenAPIConverter):
    """Our marshmallow-to-OpenAPI rules.
    - An outbound schema (anything but a StrictSchema, which only reads bodies) that marks no field
      `required=True` lists every field as `required`: the server always sends each one, null when it
      has no value. A field the answer may leave out says so with `metadata={"optional": True}`.
    - Every property has a description: its own, else the common one of its name.
    - A schema's `EXAMPLE` (a realistic body) is its example, and its request bodies'."""

    def schema2jsonschema(self, schema):
        json_schema = super().schema2jsonschema(schema)
        properties = json_schema.get("properties", {})
        declared = {(f.data_key or name): f for name, f in schema.fields.items()}
        for name, prop in properties.items():
            field = declared.get(name)
            if "description" not in prop and name in COMMON_DESCRIPTIONS:
                prop["description"] = COMMON_DESCRIPTIONS[name]
            prop.pop("optional", None)
            if field is not None and None in prop.get("enum", ()):
                # an enum or null, not an enum with a null member (clients made a class per variant)
                values = [v for v in prop.pop("enum") if v is not None]
                kind = next(t for t in prop.pop("type") if t != "null")
                prop["anyOf"] = [{"type": kind, "enum": values}, {"type": "null"}]
        example = getattr(schema, "EXAMPLE", None)
        if example is not None:
            json_schema["example"] = example
        explicit = any(field.required for field in declared.values())
        if not isinstance(schema, StrictSchema) and not explicit:
            required = [
                name
                for name, field in declared.items()
                if name in properties and not field.metadata.get("optional") and not field.load_only
            ]
            if required:
                json_schema["required"] = sorted(required)
        return json_schema


class CompanionMarshmallowPlugin(MarshmallowPlugin):
    Converter = CompanionConverter


#: The longest string each parameter format can take; any other string parameter gets DEFAULT_MAX_LENGTH.
FORMAT_MAX_LENGTH = {"uuid": 36, "date": 10, "date-time": 40}


DEFAULT_MAX_LENGTH = 200


def _bound_string(parameter: Any) -> None:
    """Every string parameter says how long it may be (issue 21: clients and fuzzers stay under 414)."""
    schema = parameter.get("schema") if isinstance(parameter, dict) else None
    if not isinstance(schema, dict) or schema.get("type") != "string" or "maxLength" in schema:
        return
    if "enum" in schema:
        schema["maxLength"] = max(len(str(v)) for v in schema["enum"])
    else:
        schema["maxLength"] = FORMAT_MAX_LENGTH.get(schema.get("format", ""), DEFAULT_MAX_LENGTH)


def configure_openapi(app: Flask) -> None:
    app.config.update(
        API_TITLE="Companion API",
        API_VERSION="v1",
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={
            "info": {
                "description": (
                    "The contract of the phone app, the coach dashboard and insurer tools. "
                    "Every path is under "
                    "/api/v1; every error has the envelope {error: {status, code, message, fields}}."
                )
            },
            "security": [{"bearerAuth": []}],
            "components": {
                "schemas": {"FieldErrors": FIELD_ERRORS_SCHEMA},
                "securitySchemes": {
                    "bearerAuth": {
                        "type": "http",
                        "scheme": "bearer",
                        "description": "An access token from /auth/token.",
                    }
                },
            },
            "servers": [{"url": "/", "description": "This server; every path starts with /api/v1."}],
        },
    )
