"""The OpenAPI document matches the server; random malformed input never gets a 5xx or stores anything."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate

from keng.adapters.secrets import SecretStore
from keng.adapters.store.app import Keng
from keng.adapters.store.config import locate_store
from keng.domain.content import MAX_TARGETS
from keng.runtime.config import load_settings
from keng.runtime.http.app import create_app
from keng.runtime.http.openapi import openapi_document
from keng.runtime.http.services import Services
from keng.services.access import add_integration, issue_token
from keng.services.inventory import install_sample
from tests.http_server import Client, serve
from tests.unit.cap_builders import SENDER, alert


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Client, str, str, Keng]]:
    tmp = tmp_path_factory.mktemp("fuzz")
    app = Keng(env=locate_store(None, tmp).env)
    install_sample(app, reorganise=False)  # the 2022 codes (before the reorganisation)
    secrets = SecretStore(tmp)
    token = issue_token(app, staff="lan.nguyen", label="fuzz", by="admin")
    secret = add_integration(app, secrets, name="city-source", kind="city-source", jurisdiction=["021"], by="admin")
    CAP_SECRET.append(
        add_integration(app, secrets, name="kttv", kind="cap", jurisdiction=["021"], by="admin", senders=[SENDER])
    )
    services = Services(app=app, secrets=secrets, settings=load_settings(data_dir=str(tmp), environ={}))
    with serve(services) as client:
        yield client, token, secret, app
    app.close()


def test_openapi_document_is_valid_and_lists_exactly_the_served_routes(tmp_path: Path) -> None:
    doc = openapi_document()
    validate(doc)
    app = Keng(env=locate_store(None, tmp_path).env)
    web_app = create_app(Services(app=app, secrets=SecretStore(tmp_path), settings=load_settings(environ={})))
    served = set()
    for route in web_app.router.routes():
        path = re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", route.resource.canonical)  # type: ignore[union-attr]
        if path in ("/", "/index.html") or path.startswith("/console"):
            continue  # the web console's pages (HTML, docs/console.md), not the API
        if "{action}" in path:
            served |= {
                (path.replace("{action}", a), route.method.lower())
                for a in ("submit", "approve", "ratify", "retract", "reject", "cancel")
            }
        elif route.method != "HEAD":
            served.add((path, route.method.lower()))
    documented = {(p, m) for p, ops in doc["paths"].items() for m in ops}
    assert served == documented
    assert doc["webhooks"]["deliveryReport"]["post"]["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/DeliveryReport"
    }
    app.close()


def test_every_405_says_in_allow_which_methods_the_path_takes(server: tuple[Client, str, str, Keng]) -> None:
    client, token, _, _ = server
    for template, operations in openapi_document()["paths"].items():
        path = template.replace("{id}", "0b1e6a1e-2f1c-4c55-9a55-2b1a4e0c9d11").replace("{key}", "KEY")
        path = path.replace("{code}", "00595-WEB")
        takes = {method.upper() for method in operations}
        for method in sorted({"GET", "POST", "PUT", "PATCH", "DELETE", "TRACE"} - takes):
            reply = client.request(method, path, token=token)
            assert reply.status == 405, (method, path, reply.status)
            assert reply.headers["content-type"].startswith("application/problem+json")
            allow = set(reply.headers["allow"].split(", "))
            assert allow == takes | ({"HEAD"} if "GET" in takes else set()), (method, path, allow)
            assert f"{method} is not allowed" in reply.json()["detail"]


DRAFT = {"title": "Thông báo", "text": "Nội dung", "priority": "normal", "targets": {"areas": ["00595"]}}
WITHOUT_PRIORITY = {k: v for k, v in DRAFT.items() if k != "priority"}


@pytest.mark.parametrize(
    ("door", "body", "pointer", "detail"),
    [
        ("draft", {**DRAFT, "title": 1}, "/title", "title must be a string"),
        ("draft", {**DRAFT, "channels": ["tv"]}, "/channels/0", "channels[0] must be one of speaker, eboard"),
        (
            "draft",
            {**DRAFT, "schedule": {"at": ["2026-11-27 17:00:00+07:00"]}},
            "/schedule/at/0",
            "schedule.at[0] must be an RFC 3339 date-time",
        ),
        ("hook", WITHOUT_PRIORITY, "/priority", "priority is required"),
        (
            "hook",
            {**DRAFT, "targets": {"areas": ["00595"] * (MAX_TARGETS + 1)}},
            "/targets/areas",
            f"targets.areas has more than {MAX_TARGETS}",
        ),
        ("revise", {"schedule": {"repeats": 0}}, "/schedule/repeats", "schedule.repeats must be at least 1"),
        ("revise", {"drill": "yes"}, "/drill", "drill must be true or false"),
        ("reject", {"reason": ""}, "/reason", "reason must not be empty"),
        ("cancel", {"reason": "trùng", "by": "me"}, "", "unknown field(s): by"),
    ],
)
def test_a_body_the_published_schema_refuses_is_a_422_naming_the_field(
    server: tuple[Client, str, str, Keng], door: str, body: dict[str, object], pointer: str, detail: str
) -> None:
    client, token, secret, app = server
    bid = client.json("POST", "/api/v1/broadcasts", DRAFT, token).json()["id"]
    before = app.max_position()
    if door == "hook":
        reply = client.signed("/api/v1/hooks/city-source", orjson.dumps(body), secret, f"refused-{pointer}")
    elif door == "draft":
        reply = client.json("POST", "/api/v1/broadcasts", body, token)
    else:
        method, path = ("PATCH", "") if door == "revise" else ("POST", f"/{door}")
        reply = client.json(method, f"/api/v1/broadcasts/{bid}{path}", body, token)
    problem = reply.json()
    assert (reply.status, problem["type"]) == (422, "urn:keng:problem:invalid-payload"), problem
    assert problem["detail"].startswith(detail) and problem["errors"][0]["path"] == pointer, problem
    assert app.max_position() == before


def test_every_violation_is_listed_by_json_pointer(server: tuple[Client, str, str, Keng]) -> None:
    client, token, _, _ = server
    reply = client.json("POST", "/api/v1/broadcasts", {**DRAFT, "title": 1, "priority": "urgent", "x": 0}, token)
    assert reply.status == 422
    assert {e["path"] for e in reply.json()["errors"]} == {"/title", "/priority", ""}
    assert "got 'urgent'" in next(e["message"] for e in reply.json()["errors"] if e["path"] == "/priority")


def test_responses_match_their_documented_schemas(server: tuple[Client, str, str, Keng]) -> None:
    client, token, _, _ = server
    doc = openapi_document()
    resolver = {"components": doc["components"]}

    def check(reply_body: bytes, schema: dict[str, object]) -> None:
        jsonschema.validate(orjson.loads(reply_body), {**schema, **resolver})

    created = client.json(
        "POST",
        "/api/v1/broadcasts",
        {"title": "T", "text": "Nội dung", "priority": "normal", "targets": {"areas": ["00595"]}},
        token,
    )
    check(
        created.body,
        doc["paths"]["/api/v1/broadcasts"]["post"]["responses"]["201"]["content"]["application/json"]["schema"],
    )
    for path in ("/api/v1/broadcasts", "/api/v1/endpoints", "/api/v1/areas", "/api/v1/staff"):
        schema = doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        check(client.json("GET", path, None, token).body, schema)
    bad = client.json("POST", "/api/v1/broadcasts", {"title": 1}, token)
    check(bad.body, {"$ref": "#/components/schemas/Problem"})


def _assert_clean_refusal(reply: object, app: Keng, before: int) -> None:
    status = reply.status  # type: ignore[attr-defined]
    assert status < 500, reply.body  # type: ignore[attr-defined]
    assert b"Traceback" not in reply.body  # type: ignore[attr-defined]
    if status >= 400:
        assert reply.headers["content-type"].startswith("application/problem+json")  # type: ignore[attr-defined]
        assert app.max_position() == before


FIELDS = [
    "title",
    "text",
    "priority",
    "targets",
    "areas",
    "schedule",
    "at",
    "repeats",
    "drill",
    "expires_at",
    "channels",
    "audio_url",
    "x",
]
json_ish = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.sampled_from(FIELDS), c, max_size=6),
    max_leaves=15,
)
bodies = st.one_of(
    st.binary(max_size=200),
    json_ish.map(orjson.dumps),
    json_ish.map(lambda v: orjson.dumps(v)[:-1] if len(orjson.dumps(v)) > 1 else b"{"),
)
CAP_SECRET: list[str] = []
FORMAT_CHECKER = jsonschema.Draft202012Validator.FORMAT_CHECKER  # date-time: RFC 3339 (rfc3339-validator)
VALID_CAP = alert(identifier="FUZZ-BASE")


@st.composite
def cap_variants(draw: st.DrawFn) -> bytes:
    """A valid alert with random damage: a cut, an insertion, a duplicated slice, or a swapped tag."""
    doc = bytearray(VALID_CAP)
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(doc)))
        j = draw(st.integers(i, min(len(doc), i + 40)))
        kind = draw(st.sampled_from(["cut", "insert", "dup", "tag"]))
        if kind == "cut":
            del doc[i:j]
        elif kind == "insert":
            doc[i:i] = draw(
                st.sampled_from(
                    [
                        b"<",
                        b">",
                        b"&",
                        b"<!DOCTYPE x>",
                        b"\xff\xfe",
                        b"<info>",
                        b"</alert>",
                        b"&lt;",
                        b"Extreme",
                        b"2026-13-45T99:00:00+07:00",
                    ]
                )
            )
        elif kind == "dup":
            doc[i:i] = doc[i:j]
        else:
            doc = bytearray(
                bytes(doc).replace(
                    draw(st.sampled_from([b"urgency", b"severity", b"msgType", b"status", b"geocode", b"info"])),
                    b"bogus",
                    1,
                )
            )
    return bytes(doc)


FUZZ = settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], deadline=None)


# (No leap second: jsonschema refuses "23:59:60Z", jsonschema-rs takes it; keng answers it 422 invalid-value.)
TIMES = st.sampled_from(
    [
        "2099-01-01T00:00:00+07:00",
        "2098-11-27t17:00:00z",
        "2098-11-27T17:00:00.123456789-05:00",
        "2026-11-27 17:00:00+07:00",
        "2026-11-27T17:00:00",
        "27/11/2026",
    ]
)
near_drafts = st.fixed_dictionaries(  # mostly valid, each field wrong now and then
    {
        "title": st.text(min_size=1, max_size=3),
        "text": st.text(min_size=1, max_size=3),
        "priority": st.sampled_from(["normal", "emergency", "priority", "urgent"]),
        "targets": st.sampled_from([{"areas": ["00595"]}, {"areas": [], "endpoints": []}, {"areas": "00595"}]),
    },
    optional={
        "drill": st.booleans(),
        "channels": st.lists(st.sampled_from(["speaker", "app", "portal", "tv"]), max_size=2),
        "schedule": st.fixed_dictionaries(
            {}, optional={"at": st.lists(TIMES, max_size=1), "repeats": st.integers(0, 11) | st.just(2.0)}
        ),
        "expires_at": TIMES,
        "audio_url": st.sampled_from(["https://example.org/a.mp3", "ftp://example.org/a.mp3"]),
    },
)


@FUZZ
@given(body=json_ish | near_drafts)
def test_a_body_is_refused_as_invalid_exactly_when_the_served_schema_refuses_it(
    server: tuple[Client, str, str, Keng], body: object
) -> None:
    """The server's checks against the document it serves, read by another validator (the pure-Python reference)."""
    client, token, _, _ = server
    document = client.request("GET", "/openapi.json").json()
    schema = {"$ref": "#/components/schemas/BroadcastInput", "components": document["components"]}
    valid = jsonschema.Draft202012Validator(schema, format_checker=FORMAT_CHECKER).is_valid(body)
    reply = client.request(
        "POST", "/api/v1/broadcasts", orjson.dumps(body), {"Content-Type": "application/json"}, token
    )
    refused = reply.status == 422 and reply.json()["type"] == "urn:keng:problem:invalid-payload"
    event(f"valid: {valid}")
    assert refused is not valid, reply.body


@FUZZ
@given(body=bodies)
def test_malformed_operator_input_gets_a_clean_4xx(server: tuple[Client, str, str, Keng], body: bytes) -> None:
    client, token, _, app = server
    before = app.max_position()
    reply = client.request("POST", "/api/v1/broadcasts", body, {"Content-Type": "application/json"}, token)
    _assert_clean_refusal(reply, app, before)


@FUZZ
@given(body=st.one_of(cap_variants(), st.binary(max_size=300)), n=st.integers(0, 10**9))
def test_malformed_cap_gets_a_clean_4xx(server: tuple[Client, str, str, Keng], body: bytes, n: int) -> None:
    client, _, _, app = server
    before = app.max_position()
    reply = client.signed("/api/v1/cap", body, CAP_SECRET[0], f"cap-fuzz-{n}", content_type="application/cap+xml")
    _assert_clean_refusal(reply, app, before)


@FUZZ
@given(body=bodies, n=st.integers(0, 10**9))
def test_malformed_webhook_input_gets_a_clean_4xx(server: tuple[Client, str, str, Keng], body: bytes, n: int) -> None:
    client, _, secret, app = server
    before = app.max_position()
    _assert_clean_refusal(client.signed("/api/v1/hooks/city-source", body, secret, f"fuzz-{n}"), app, before)
