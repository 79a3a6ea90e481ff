"""Hostile bodies and request heads (issue 21, findings 2, 4, 5 and 9's chunked body): a lone UTF-16
surrogate, JSON nested thousands deep, too many keys, too long strings, a chunked body over 1 MiB, a
request line or header over the app's limits. Each answers the one error envelope, never a 500; in a
sync batch a bad item spoils only itself.

Every write route of the URL map is called, as a role it allows, so that the body guard is proven to
stand before each of them (not only before the routes someone remembered)."""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select

from companion import db
from companion.accounts import services as accounts
from companion.api import BODY_METHODS
from companion.auth.access import PUBLIC, declared_access
from companion.tracking.models import Craving
from companion.validation import MAX_BODY_DEPTH, MAX_BODY_KEYS, MAX_BODY_STRING
from tests.conftest import Api

LONE = "\ud83d"  # the first half of 😀, as a phone that cut a string in the middle sends it
ROLE_OF = {"member": "member", "coach": "coach", "admin": "admin", "insurer_analyst": "analyst"}


@pytest.fixture
def callers(app, api, register, staff):
    with app.app_context(), db.unit_of_work():
        code = f"H{uuid.uuid4().hex[:6].upper()}"
        accounts.create_insurer("Hostile plan", code, now=db.utcnow())
    return {
        "anonymous": api,
        "member": register(),
        "coach": staff("coach"),
        "admin": staff("admin"),
        "analyst": staff("insurer_analyst", insurer_code=code),
    }


def write_routes(app) -> list[tuple[str, str, str]]:
    """(method, path) of every API route that takes a body, path parameters filled with any value."""
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1"):
            continue
        path = rule.rule
        for name, converter in rule._converters.items():
            value = str(uuid.uuid4()) if type(converter).__name__ == "UUIDConverter" else "2026-01-01"
            path = _fill(path, name, value)
        for method in sorted((rule.methods or set()) & BODY_METHODS):
            found.append((method, path, rule.endpoint))
    assert len(found) >= 15, found
    return found


def _fill(path: str, name: str, value: str) -> str:
    start = path.index("<")
    while not path[start:].split(">", 1)[0].endswith(name):
        start = path.index("<", start + 1)
    end = path.index(">", start)
    return path[:start] + value + path[end + 1 :]


def caller_for(app, callers, endpoint: str, method: str) -> Api:
    roles = {str(getattr(r, "value", r)) for r in declared_access(app, endpoint, method) or ()}
    if PUBLIC in roles:
        return callers["anonymous"]
    for role, actor in ROLE_OF.items():
        if role in roles:
            return callers[actor]
    raise AssertionError(f"{method} {endpoint} declares no role")


def send_raw(caller: Api, method: str, path: str, text: str | bytes, **kw):
    return caller.client.open(
        path, method=method, data=text, content_type="application/json", headers=caller._headers(None), **kw
    )


def test_a_lone_surrogate_is_a_422_naming_the_field_on_every_write_route(app, callers):
    escaped = '"\\ud83d"'  # JSON's own escape: what json.dumps of a cut string writes
    for method, path, endpoint in write_routes(app):
        caller = caller_for(app, callers, endpoint, method)
        for body in (
            '{"note": ' + escaped + "}",
            '{"outer": {"inner": [1, ' + escaped + "]}}",
            "{" + escaped + ": 1}",
            '{"note": "ok\\u0000"}',
        ):
            r = send_raw(caller, method, path, body)
            assert r.status_code == 422, (method, path, body, r.status_code, r.get_data(as_text=True))
            error = r.get_json()["error"]
            assert error["code"] == "invalid_payload", error
            fields = error["fields"]
            if "note" in body and "u0000" in body:
                assert fields == {"note": ["Must not contain NUL characters."]}, (path, fields)
            elif "note" in body:
                assert "Unicode" in fields["note"][0], (path, fields)
            elif "outer" in body:
                assert list(fields["outer"]["inner"]) == ["1"], (path, fields)
            else:
                assert list(fields) == ["\\ud83d"], (path, fields)


def test_a_lone_surrogate_in_the_sign_in_and_registration_fields(api):
    for path, body in (
        ("/auth/token", {"email": LONE, "password": "a password long enough"}),
        ("/auth/token", {"email": "someone@example.org", "password": "pass" + LONE + "word"}),
        ("/auth/register", {"email": "x@example.org", "password": LONE * 12, "timezone": "UTC"}),
    ):
        r = api.post(path, body)
        assert r.status_code == 422, (path, r.get_json())
        bad = next(k for k, v in body.items() if isinstance(v, str) and LONE in v)
        assert list(r.get_json()["error"]["fields"]) == [bad], r.get_json()


def craving(**data):
    body = {"id": str(uuid.uuid4()), "recorded_at": datetime.now(UTC).isoformat(), "intensity": 4}
    body.update(data)
    return {"type": "craving", "data": body}


def test_a_lone_surrogate_in_a_sync_batch_spoils_only_its_item(app, callers):
    member = callers["member"]
    good_one, good_two = craving(note="fine"), craving(note="😀 whole")
    bad = craving(note="cut " + LONE)
    bad_key = craving()
    bad_key["data"][LONE] = 1
    items = [good_one, bad, good_two, bad_key]
    for attempt in range(2):  # the phone's offline queue retries the same batch: it must not get stuck
        r = member.post("/sync", {"items": items})
        assert r.status_code == 200, r.get_json()
        results = r.get_json()["results"]
        expected = ("created", "invalid", "created", "invalid") if attempt == 0 else ("unchanged", "invalid")
        assert [x["status"] for x in results][: len(expected)] == list(expected), results
        assert "Unicode" in results[1]["errors"]["note"][0], results[1]
        assert "Unicode" in next(iter(results[3]["errors"].values()))[0], results[3]
        assert results[3]["id"] == bad_key["data"]["id"]
    with app.app_context():
        ids = [uuid.UUID(item["data"]["id"]) for item in (good_one, good_two, bad)]
        stored = db.session.execute(select(Craving.id, Craving.note).where(Craving.id.in_(ids))).all()
    assert sorted(note for _, note in stored) == ["fine", "😀 whole"], stored


@pytest.mark.parametrize(
    "bad_note",
    [b"\xed\xa0\x80 cut", b"\\u0000 nul", b"\\uDC00 low half"],
    ids=["utf8-encoded-surrogate", "nul-escape", "uppercase-escape"],
)
def test_bad_text_in_a_sync_item_is_found_however_the_body_spells_it(app, callers, bad_note):
    """A sync item's strings are walked for bad text unless the body's source cannot hold any (no \\u
    escape of a NUL or a surrogate, no UTF-8-encoded surrogate): each spelling spoils only its item."""
    good = json.dumps(craving(note="fine")).encode()
    bad = craving()
    bad_id = bad["data"]["id"]
    bad_raw = json.dumps(bad).encode().replace(b'"intensity"', b'"note": "' + bad_note + b'", "intensity"')
    r = send_raw(callers["member"], "POST", "/api/v1/sync", b'{"items": [' + good + b", " + bad_raw + b"]}")
    assert r.status_code == 200, r.get_json()
    results = r.get_json()["results"]
    assert [x["status"] for x in results] == ["created", "invalid"], results
    assert results[1]["id"] == bad_id and list(results[1]["errors"]) == ["note"], results[1]


def test_json_nested_thousands_deep_is_a_400_on_every_write_route(app, callers):
    deep_list = "[" * 2000 + "]" * 2000
    deep_object = '{"a":' * 2000 + "1" + "}" * 2000
    inside = '{"note": ' + "[" * 900 + "]" * 900 + "}"
    for method, path, endpoint in write_routes(app):
        caller = caller_for(app, callers, endpoint, method)
        for body in (deep_list, deep_object, inside):
            r = send_raw(caller, method, path, body)
            assert r.status_code == 400, (method, path, body[:20], r.status_code)
            assert r.get_json()["error"]["code"] == "invalid_json"


def test_depth_limit_is_exactly_32(callers):
    member = callers["member"]

    def nested(levels: int) -> str:  # the body itself is level 1
        return '{"note": ' + "[" * (levels - 1) + "]" * (levels - 1) + "}"

    at_limit = send_raw(member, "POST", "/api/v1/cravings", nested(MAX_BODY_DEPTH))
    assert at_limit.status_code == 422, at_limit.get_json()
    assert "note" in at_limit.get_json()["error"]["fields"]
    over = send_raw(member, "POST", "/api/v1/cravings", nested(MAX_BODY_DEPTH + 1))
    assert over.status_code == 400, over.get_json()
    assert "32" in over.get_json()["error"]["message"]
    in_sync = member.post("/sync", {"items": [{"type": "craving", "data": {"x": [[[[[]]]]] * 1}}]})
    assert in_sync.status_code == 200, in_sync.get_json()
    deep_item = send_raw(member, "POST", "/api/v1/sync", '{"items": [' + "[" * 40 + "]" * 40 + "]}")
    assert deep_item.status_code == 400, deep_item.get_json()


def test_too_many_keys_and_too_long_strings_are_422_naming_the_field(callers):
    member = callers["member"]
    many = {f"k{i}": i for i in range(MAX_BODY_KEYS + 1)}
    r = member.post("/cravings", {"note": "x", "extra": many})
    assert r.status_code == 422 and r.get_json()["error"]["fields"]["extra"] == [
        f"At most {MAX_BODY_KEYS} keys."
    ]
    r = member.post("/cravings", {"note": "x" * (MAX_BODY_STRING + 1)})
    assert r.status_code == 422, r.get_json()
    assert r.get_json()["error"]["fields"]["note"] == [f"At most {MAX_BODY_STRING} characters."]
    r = member.post("/cravings", {"not json": 1}, headers={"Content-Type": "application/json"})
    assert r.status_code == 422  # an ordinary unknown field still gets the schema's answer


def test_invalid_utf8_and_broken_json_are_400(callers):
    member = callers["member"]
    for raw in (b'{"note": "\xed\xa0\xbd"}', b'{"note": "\xff"}', b'{"note": '):
        r = send_raw(member, "POST", "/api/v1/cravings", raw)
        if raw.startswith(b'{"note": "\xed'):  # UTF-8 of a surrogate: decodes in Python, refused as text
            assert r.status_code in (400, 422), r.get_json()
        else:
            assert r.status_code == 400, r.get_json()
        assert r.get_json()["error"]["status"] == r.status_code


def test_a_chunked_body_over_1_mib_is_413(callers):
    member = callers["member"]
    big = b'{"note": "' + b"x" * (1024 * 1024) + b'"}'
    for data in (big, b'{"intensity": 3}'):
        r = member.client.open(
            "/api/v1/cravings",
            method="POST",
            input_stream=io.BytesIO(data),
            headers={
                **member._headers(None),
                "Content-Type": "application/json",
                "Transfer-Encoding": "chunked",
            },
            environ_overrides={"wsgi.input_terminated": True},
        )
        assert r.headers.get("Content-Length") is not None
        if data is big:
            assert r.status_code == 413 and r.get_json()["error"]["code"] == "payload_too_large", r.get_json()
        else:  # a small chunked body is read whole: the schema answers on its fields
            assert r.status_code == 422 and "id" in r.get_json()["error"]["fields"], r.get_json()


def test_an_oversized_request_line_or_header_answers_the_envelope(callers):
    member = callers["member"]
    r = member.get("/sync?since=" + "A" * 5000)
    assert r.status_code == 414 and r.get_json()["error"]["code"] == "uri_too_long", r.get_json()
    r = member.get("/sync", headers={"X-Padding": "p" * 9000})
    assert r.status_code == 431 and r.get_json()["error"]["code"] == "headers_too_large", r.get_json()
    many = {f"X-H{i}": "1" for i in range(120)}
    r = member.get("/sync", headers=many)
    assert r.status_code == 431, r.get_json()
    assert member.get("/sync?since=" + "A" * 600).status_code == 422  # long but under the line limit


def test_nothing_stored_by_a_refused_body(app, callers):
    member = callers["member"]
    with app.app_context():
        before = db.session.scalar(select(func.count()).select_from(Craving))
    member.post("/cravings", {"id": str(uuid.uuid4()), "recorded_at": date.today().isoformat(), "note": LONE})
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Craving)) == before


def test_undecodable_query_strings_never_answer_500(app, callers):
    """Query strings are decoded by werkzeug (invalid UTF-8 becomes U+FFFD): no lone surrogate reaches a
    view that way, and a NUL or a broken byte in any argument of any GET route is never a 500."""
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1") or "GET" not in (rule.methods or set()):
            continue
        path = rule.rule
        for name, converter in rule._converters.items():
            value = str(uuid.uuid4()) if type(converter).__name__ == "UUIDConverter" else "2026-01-01"
            path = _fill(path, name, value)
        caller = caller_for(app, callers, rule.endpoint, "GET")
        for query in ("cursor=%ED%A0%BD", "since=%00abc", "from=%FF%FE", "status=%ED%A0%BD"):
            r = caller.client.get(f"{path}?{query}", headers=caller._headers(None))
            assert r.status_code < 500, (path, query, r.status_code)
            assert r.is_json, (path, query)


def test_every_string_parameter_has_a_max_length_and_every_operation_its_head_errors(client):
    spec = client.get("/api/openapi.json").get_json()
    strings = 0
    for path, operations in spec["paths"].items():
        shared = operations.get("parameters", [])
        for method, operation in operations.items():
            if method == "parameters":
                continue
            assert {"414", "431"} <= set(operation["responses"]), (method, path)
            for parameter in [*shared, *operation.get("parameters", [])]:
                schema = parameter.get("schema", {})
                if schema.get("type") == "string":
                    strings += 1
                    assert 0 < schema.get("maxLength", 0) <= 200, (method, path, parameter["name"])
    assert strings >= 30, strings


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": 123456789012345678901234567890, "b": -98765432109876543210}',  # past 64 bits: exact
        b'{"a": "\\ud800 cut"}',  # a lone surrogate (orjson refuses it; the walk must see it)
        b'{"a": "\xed\xa0\x80"}',  # a UTF-8-encoded surrogate
        b'{"a": NaN, "b": 1e400}',
        '{"a": "é"}'.encode("utf-16"),
        b'{"a": 1.5, "b": [true, null, "x"], "a": 2}',
    ],
)
def test_the_body_parser_reads_every_body_as_the_standard_library_does(raw):
    """companion.api reads bodies with orjson where it reads them the same way, else with `json`."""
    from companion.api import parse_json

    assert repr(parse_json(raw)) == repr(json.loads(raw))
