"""GET /asyncapi.json: the device protocol's AsyncAPI document as shipped, naming this installation's topic root."""

from __future__ import annotations

from pathlib import Path

import pytest

from keng.adapters.mqtt.asyncapi import asyncapi_document
from keng.adapters.secrets import SecretStore
from keng.adapters.store.app import Keng
from keng.adapters.store.config import locate_store
from keng.runtime.config import load_settings
from keng.runtime.http.services import Services
from tests.http_server import serve


@pytest.mark.parametrize("root", [None, "hanoi/bac-tu-liem/keng"])
def test_the_served_document_is_the_shipped_one_for_the_configured_topic_root(tmp_path: Path, root: str | None) -> None:
    environ = {"KENG_TOPIC_ROOT": root} if root else {}
    settings = load_settings(data_dir=str(tmp_path), environ=environ)
    app = Keng(env=locate_store(None, tmp_path).env)
    try:
        with serve(Services(app=app, secrets=SecretStore(tmp_path), settings=settings)) as client:
            reply = client.request("GET", "/asyncapi.json")
    finally:
        app.close()
    assert reply.status == 200 and reply.headers["content-type"].startswith("application/json")
    served = reply.json()
    assert served == asyncapi_document(root or "keng/v1")
    assert served["components"]["parameters"]["root"]["enum"] == [root or "keng/v1"]
    assert served["channels"] == asyncapi_document()["channels"]
