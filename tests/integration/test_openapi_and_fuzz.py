"""The OpenAPI document matches the server; random malformed input never gets a 5xx or stores anything."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate

from adapters.secrets import SecretStore
from adapters.store.app import Keng
from adapters.store.config import locate_store
from runtime.config import load_settings
from runtime.http.app import create_app
from runtime.http.openapi import openapi_document
from runtime.http.services import Services
from services.access import add_integration, issue_token
from services.inventory import install_sample
from tests.http_server import Client, serve
from tests.unit.cap_builders import SENDER, alert


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Client, str, str, Keng]]:
    tmp = tmp_path_factory.mktemp("fuzz")
    app = Keng(env=locate_store(None, tmp).env)
    install_sample(app)
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
        if "{action}" in path:
            served |= {
                (path.replace("{action}", a), route.method.lower())
                for a in ("submit", "approve", "ratify", "reject", "cancel")
            }
        elif route.method != "HEAD":
            served.add((path, route.method.lower()))
    documented = {(p, m) for p, ops in doc["paths"].items() for m in ops}
    assert served == documented
    app.close()


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


json_ish = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda c: (
        st.lists(c, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
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
            ),
            c,
            max_size=6,
        )
    ),
    max_leaves=15,
)
bodies = st.one_of(
    st.binary(max_size=200),
    json_ish.map(orjson.dumps),
    json_ish.map(lambda v: orjson.dumps(v)[:-1] if len(orjson.dumps(v)) > 1 else b"{"),
)
CAP_SECRET: list[str] = []
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
