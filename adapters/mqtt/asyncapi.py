"""The device protocol as data: the AsyncAPI 3 document of keng's MQTT interface, with a JSON Schema for every
command, ack and status payload.

The canonical file is `asyncapi.json` beside this module (package data); `docs/asyncapi.json` is a copy kept
identical by a test. Topics are written with a `{root}` parameter (KENG_TOPIC_ROOT, default `keng/v1`): the copy a
service serves (GET /asyncapi.json) names its configured root as the parameter's default and only value.
"""

from __future__ import annotations

import copy
from functools import cache
from importlib.resources import files
from typing import Any

import orjson

from keng.adapters.mqtt.topics import DEFAULT_ROOT

FILENAME = "asyncapi.json"
__all__ = ["DEFAULT_ROOT", "asyncapi_document", "served_bytes"]  # DEFAULT_ROOT: the `root` parameter's default


@cache
def _canonical() -> dict[str, Any]:
    document: dict[str, Any] = orjson.loads(files("keng.adapters.mqtt").joinpath(FILENAME).read_bytes())
    return document


def asyncapi_document(root: str | None = None) -> dict[str, Any]:
    """A fresh copy of the document; with `root`, the topic root parameter is fixed to that root."""
    document = copy.deepcopy(_canonical())
    if root is not None:
        parameter = document["components"]["parameters"]["root"]
        parameter["default"], parameter["enum"] = root, [root]
    return document


@cache
def served_bytes(root: str) -> bytes:
    """The document a service serves for its topic root, encoded once per root."""
    return orjson.dumps(asyncapi_document(root))
