"""The served OpenAPI document as the people who build on it read it: it validates, every operation
is named, every field is described and typed, every error carries the envelope with an example of its
own code, and every request body has a realistic example that the document itself accepts.

These checks run over the whole document, so an endpoint added without a name, a description or an
example fails here."""

from __future__ import annotations

import re
from typing import Any

import pytest
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from companion.errors import CODES

OPERATION_ID = re.compile(r"^[a-z]+[A-Za-z]*$")


@pytest.fixture
def spec(client) -> dict[str, Any]:
    return client.get("/api/openapi.json").get_json()


def operations(spec: dict[str, Any]):
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            if method != "parameters":
                yield method, path, operation


def test_the_document_validates(spec):
    validate(spec)  # raises on any violation of the OpenAPI 3.1 schema
    assert spec["openapi"] == "3.1.0"
    assert spec["servers"] and spec["servers"][0]["url"] == "/"


def test_every_operation_has_a_unique_camel_case_operation_id(spec):
    ids = [operation.get("operationId") for _, _, operation in operations(spec)]
    assert None not in ids
    assert all(OPERATION_ID.match(i) for i in ids), [i for i in ids if not OPERATION_ID.match(i)]
    assert len(ids) == len(set(ids))
    named = {(m, p): o["operationId"] for m, p, o in operations(spec)}
    assert named["post", "/api/v1/auth/register"] == "registerMember"
    assert named["put", "/api/v1/drink-logs/{day}"] == "putDrinkLog"
    assert named["get", "/api/v1/cravings"] == "listCravings"
    assert named["post", "/api/v1/sync"] == "syncBatch"


def _properties(node: Any, where: str):
    """Every (place, name, property) of every object schema under `node`."""
    if isinstance(node, dict):
        for name, prop in (node.get("properties") or {}).items():
            yield where, name, prop
        for key, child in node.items():
            yield from _properties(child, f"{where}/{key}")
    elif isinstance(node, list):
        for i, child in enumerate(node):
            yield from _properties(child, f"{where}/{i}")


def test_every_property_is_described(spec):
    undescribed = [
        f"{where}.{name}" for where, name, prop in _properties(spec, "") if not prop.get("description")
    ]
    assert undescribed == []
    assert len(list(_properties(spec["components"]["schemas"], ""))) > 300


def test_no_body_is_an_untyped_object(spec):
    """A property typed only as "object" (or anything) gives a generated client a bare dict."""
    untyped = [
        f"{where}.{name}"
        for where, name, prop in _properties(spec["components"]["schemas"], "")
        if not ({"type", "$ref", "anyOf", "oneOf", "allOf"} & prop.keys())
        or (
            prop.get("type") in ("object", ["object", "null"])
            and not {"properties", "additionalProperties"} & prop.keys()
        )
    ]
    assert untyped == []


def test_response_schemas_say_which_fields_are_always_there(spec):
    schemas = spec["components"]["schemas"]
    without = [n for n, s in schemas.items() if s.get("properties") and "required" not in s]
    # Only inbound bodies whose every field is optional may omit `required`.
    assert set(without) <= {
        "MemberPatch",
        "PlanPatch",
        "Reminders",
        "DrinkLogInput",
        "BacDevice",
        "PaginationMetadata",
    }
    assert set(schemas["DrinkLog"]["required"]) >= {"date", "standard_drinks", "heavy", "source"}
    assert "errors" not in schemas["SyncResult"]["required"]
    assert set(schemas["TimelineItem"]["required"]) == {"kind", "id", "at", "date"}


def test_every_request_body_has_an_example_the_document_accepts(spec):
    for method, path, operation in operations(spec):
        if "requestBody" not in operation:
            continue
        media = operation["requestBody"]["content"]["application/json"]
        assert "example" in media, (method, path)
        schema = {**media["schema"], "components": spec["components"]}
        errors = list(OAS31Validator(schema).iter_errors(media["example"]))
        assert errors == [], (method, path, [e.message for e in errors])


def test_sync_items_are_a_oneof_by_type_built_from_the_handlers(spec):
    from companion.tracking.sync import CHANGE_SCHEMAS, HANDLERS

    items = spec["components"]["schemas"]["SyncBatch"]["properties"]["items"]["items"]
    assert items["discriminator"]["propertyName"] == "type"
    assert set(items["discriminator"]["mapping"]) == set(HANDLERS)
    for type_name, ref in items["discriminator"]["mapping"].items():
        item = spec["components"]["schemas"][ref.rsplit("/", 1)[-1]]
        assert item["properties"]["type"]["enum"] == [type_name]
        assert "$ref" in item["properties"]["data"]
    changes = spec["components"]["schemas"]["SyncChanges"]["properties"]["changes"]["items"]
    assert set(changes["discriminator"]["mapping"]) == set(CHANGE_SCHEMAS)


def test_every_error_response_carries_the_envelope_and_an_example_of_its_own_code(spec):
    checked = 0
    for method, path, operation in operations(spec):
        for status, response in operation["responses"].items():
            if int(status) < 400:
                continue
            media = response["content"]["application/json"]
            assert media["schema"] == {"$ref": "#/components/schemas/Error"}, (method, path, status)
            example = media["example"]["error"]
            assert (example["status"], example["code"]) == (int(status), CODES[int(status)])
            schema = {"$ref": "#/components/schemas/Error", "components": spec["components"]}
            assert list(OAS31Validator(schema).iter_errors(media["example"])) == []
            assert ("Retry-After" in response.get("headers", {})) == (status in ("429", "503"))
            checked += 1
    assert checked > 250
    conflicts = [o["responses"]["409"] for _, _, o in operations(spec) if "409" in o["responses"]]
    assert len(conflicts) >= 9


def test_the_export_file_names_its_media_types(spec):
    ok = spec["paths"]["/api/v1/insurer/exports/{export_id}/file"]["get"]["responses"]["200"]
    assert set(ok["content"]) == {"text/csv", "application/json", "application/fhir+json"}


def test_retry_after_only_on_429_and_503(register):
    member = register()
    r = member.get("/me")
    assert r.status_code == 200
    assert "Retry-After" not in r.headers
    assert "X-RateLimit-Limit" in r.headers  # the limiter's own headers stay
