"""The device protocol's AsyncAPI document (adapters/mqtt/asyncapi.json = docs/asyncapi.json): well formed, every
reference resolves, every payload schema is a valid JSON Schema that both validators compile, every example follows
its schema; and the checker the tests use (tests/contract.py) accepts and refuses what it should."""

from __future__ import annotations

import re
from importlib.resources import files
from typing import Any

import jsonschema
import jsonschema_rs
import orjson
import pytest

from keng.adapters.mqtt.asyncapi import DEFAULT_ROOT, asyncapi_document
from keng.adapters.mqtt.topics import DEFAULT_TOPICS as TOPICS
from tests.contract import DOCS_COPY, Contract, contract

DOC = asyncapi_document()
DISPATCH = "9f0c6a52-3f43-4a8e-9a38-3c8b6d6f2a11"


def refs(node: Any, where: str = "#") -> list[tuple[str, str]]:
    """(where, target) of every $ref in the document."""
    found = []
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            found.append((where, node["$ref"]))
        for k, v in node.items():
            found += refs(v, f"{where}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            found += refs(v, f"{where}/{i}")
    return found


def resolve(pointer: str) -> Any:
    assert pointer.startswith("#/"), f"{pointer}: only references inside the document"
    node: Any = DOC
    for part in pointer[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"{pointer} does not resolve (at {part!r})"
        node = node[part]
    return node


def example(message: str, n: int = 0) -> dict[str, Any]:
    payload: dict[str, Any] = DOC["components"]["messages"][message]["examples"][n]["payload"]
    return payload


def test_the_docs_copy_is_the_packaged_document_byte_for_byte() -> None:
    packaged = files("keng.adapters.mqtt").joinpath("asyncapi.json").read_bytes()
    assert DOCS_COPY.read_bytes() == packaged, "copy adapters/mqtt/asyncapi.json to docs/asyncapi.json"


def test_it_is_an_asyncapi_3_document_whose_references_all_resolve() -> None:
    assert DOC["asyncapi"] == "3.0.0"
    assert {"title", "version"} <= DOC["info"].keys()
    found = refs(DOC)
    assert len(found) > 50
    for where, target in found:
        assert resolve(target) is not None, where


def test_channels_declare_exactly_the_parameters_of_their_address_and_operations_use_their_channels_messages() -> None:
    for name, channel in DOC["channels"].items():
        in_address = set(re.findall(r"\{(\w+)\}", channel["address"]))
        assert in_address == set(channel.get("parameters", {})), name
        for message in channel["messages"].values():
            assert message["$ref"].startswith("#/components/messages/"), name
    for name, operation in DOC["operations"].items():
        assert operation["action"] in ("send", "receive"), name
        channel_ref = operation["channel"]["$ref"]
        assert channel_ref.startswith("#/channels/"), name
        for message in operation["messages"]:
            assert message["$ref"].startswith(channel_ref + "/messages/"), (name, message)
    used = {m["$ref"].rsplit("/", 1)[1] for c in DOC["channels"].values() for m in c["messages"].values()}
    assert used == set(DOC["components"]["messages"])  # no message is documented without a channel


def test_servers_offer_tls_and_plain_mqtt() -> None:
    servers = DOC["servers"]
    assert servers["mqtts"]["protocol"] == "secure-mqtt" and servers["mqtts"]["variables"]["port"]["default"] == "8883"
    assert servers["mqtt"]["protocol"] == "mqtt"
    for server in servers.values():
        for scheme in server["security"]:
            assert resolve(scheme["$ref"])["type"] in ("userPassword", "X509")


@pytest.mark.parametrize("name", sorted(DOC["components"]["schemas"]))
def test_every_schema_is_valid_for_both_json_schema_validators(name: str) -> None:
    schema = DOC["components"]["schemas"][name]
    jsonschema.Draft7Validator.check_schema(schema)  # the AsyncAPI schema format is a superset of draft 7
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema_rs.validator_for({"$ref": f"#/components/schemas/{name}", "components": DOC["components"]})


@pytest.mark.parametrize("name", sorted(DOC["components"]["messages"]))
def test_every_message_has_a_schema_and_its_examples_follow_it(name: str) -> None:
    message = DOC["components"]["messages"][name]
    schema = {**message["payload"], "components": DOC["components"]}
    jsonschema.Draft202012Validator.check_schema(schema)
    compiled = jsonschema_rs.validator_for(schema, validate_formats=True)
    assert message["examples"], name
    for ex in message["examples"]:
        jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(ex["payload"])
        assert compiled.is_valid(ex["payload"])


def test_commands_keng_sends_allow_no_other_field() -> None:
    schemas = DOC["components"]["schemas"]
    for name in ("Play", "Display", "Stop", "Clear", "AckRefused", "Audio", "Board", "BoardVariant", "SignedFile"):
        assert schemas[name]["additionalProperties"] is False, name
    for name in ("AckPlayed", "AckDisplayed"):
        assert "sha256" in schemas[name]["required"]


def test_the_served_document_names_the_configured_topic_root() -> None:
    served = asyncapi_document("hanoi/keng/v1")
    assert served["components"]["parameters"]["root"]["enum"] == ["hanoi/keng/v1"]
    assert DOC["components"]["parameters"]["root"]["default"] == DEFAULT_ROOT == TOPICS.root
    assert "enum" not in DOC["components"]["parameters"]["root"]  # the document as shipped: any root
    rooted = Contract(served, root="hanoi/keng/v1")
    ack = orjson.dumps(example("ackReceived"))
    assert rooted.check("hanoi/keng/v1/ack/00595-SPK-001", ack) is None
    assert rooted.check("keng/v1/ack/00595-SPK-001", ack) == "no channel of the document has this topic"


# -- the checker (tests/contract.py) ---------------------------------------------------------------------------------

PLAY, DISPLAY, STOP = example("play"), example("display"), example("stop")
AREA = "keng/v1/cmd/speaker/area/00595"


@pytest.mark.parametrize(
    ("topic", "message"),
    [
        (AREA, PLAY),
        ("keng/v1/cmd/board/ep/00595-BRD-01", DISPLAY),
        ("keng/v1/cmd/board/area/021", example("display", 1)),
        ("keng/v1/cmd/speaker/ep/00595-SPK-001", STOP),
        ("keng/v1/cmd/speaker/ep/00595-SPK-001", example("ackRefused")),
        ("keng/v1/ack/00595-SPK-001", example("ackPlayed")),
        ("keng/v1/ack/00595-SPK-001", example("ackFailed") | {"surplus": "ignored by keng"}),
        ("keng/v1/ack/00595-SPK-001", {k: v for k, v in example("ackPlaying").items() if k != "endpoint"}),
        ("keng/v1/status/00595-SPK-001", example("lastWill")),
        ("keng/v1/status/00595-SPK-001", example("statusFault")),
        ("ha-noi/bac.tu_liem/keng/v1/status/00595-SPK-001", example("statusOnline")),
    ],
)
def test_the_checker_accepts_what_the_contract_allows(topic: str, message: dict[str, Any]) -> None:
    assert contract().check(topic, orjson.dumps(message)) is None


@pytest.mark.parametrize(
    ("topic", "payload", "says"),
    [
        (AREA, PLAY | {"extra": 1}, "Additional properties are not allowed"),
        (AREA, {k: v for k, v in PLAY.items() if k != "text_sha256"}, "'text_sha256' is a required property"),
        (AREA, PLAY | {"audio": None}, "at audio"),
        (AREA, PLAY | {"audio": {**PLAY["audio"], "url": "http://x/audio/k"}}, "at audio/url"),
        (AREA, PLAY | {"seq": 0}, "at seq"),
        (AREA, PLAY | {"op": "dance"}, "no message with op = 'dance'"),
        (AREA, DISPLAY, "message display is for boards, sent on a speaker topic"),
        ("keng/v1/cmd/speaker/area/00595", example("ackRefused"), "no message with op = 'ack-refused'"),
        ("keng/v1/ack/00595-SPK-001", example("ackPlayed") | {"sha256": None}, "at sha256"),
        ("keng/v1/ack/00595-SPK-001", {k: v for k, v in example("ackPlayed").items() if k != "sha256"}, "'sha256'"),
        ("keng/v1/ack/00595-SPK-001", example("ackPlayed") | {"at": "2026-11-27T17:00:01"}, "at at"),
        ("keng/v1/ack/00595-SPK-001", example("ackPlayed") | {"seq": True}, "at seq"),
        ("keng/v1/ack/00595-SPK-001", example("ackReceived") | {"v": 2}, "at v"),
        ("keng/v1/ack/00595-SPK-002", example("ackReceived"), "is not the topic's '00595-SPK-002'"),
        ("keng/v1/status/00595-SPK-001", example("statusOnline") | {"state": "asleep"}, "no message with state"),
        ("keng/v1/cmd/siren/area/00595", PLAY, "no channel"),
        ("keng/v1/elsewhere/00595", PLAY, "no channel"),
    ],
)
def test_the_checker_names_what_breaks_the_contract(topic: str, payload: dict[str, Any], says: str) -> None:
    error = contract().check(topic, orjson.dumps(payload))
    assert error is not None and says in error, error


def test_barrier_markers_and_cleared_statuses_are_not_device_messages() -> None:
    assert contract().check(TOPICS.barrier("keng-dispatcher-h-1-abcd"), b"0f1e2d3c") is None
    assert contract().check(TOPICS.status("00595-SPK-001"), b"") is None
    assert str(contract().check(TOPICS.ack("00595-SPK-001"), b"")).startswith("not JSON")
    assert contract().check(TOPICS.ack("00595-SPK-001"), b"[1]") == "not a JSON object"
