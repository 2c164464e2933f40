"""CAP as real senders write it, over HTTP (issue 15): an empty `<value>` and `expires` equal to `sent` are accepted
(the latter with a warning in the outcome), a resource whose digest does not match is refused on its own while the
alert is accepted and spoken by TTS, the refusal kept in the Inbound record; an Update or Cancel with an empty
`<references>` is a 422 that stores nothing."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest

from keng.adapters.secrets import SecretStore
from keng.adapters.store.access import find_inbound
from keng.adapters.store.app import Keng
from keng.runtime.config import load_settings
from keng.runtime.http.services import Services
from keng.runtime.workers.renderer import needs_audio
from keng.services.access import add_integration
from tests.http_server import Client, Reply, serve
from tests.unit.cap_builders import SENDER, alert, info

CAP_TYPE = "application/cap+xml"
BAD_DIGEST = (
    "<resource><resourceDesc>Bản tin âm thanh</resourceDesc><mimeType>audio/mpeg</mimeType>"
    f"<derefUri>{base64.b64encode(b'not the audio').decode()}</derefUri><digest>{'ab' * 20}</digest></resource>"
)


@pytest.fixture
def cap_api(sample_app: Keng, tmp_path: Path) -> Iterator[tuple[Client, str, Keng]]:
    secrets = SecretStore(tmp_path)
    secret = add_integration(
        sample_app, secrets, name="kttv", kind="cap", jurisdiction=["00595"], by="admin", senders=[SENDER]
    )
    services = Services(app=sample_app, secrets=secrets, settings=load_settings(data_dir=str(tmp_path), environ={}))
    with serve(services) as client:
        yield client, secret, sample_app


def post(client: Client, doc: bytes, secret: str) -> Reply:
    return client.signed("/api/v1/cap", doc, secret, f"cap-{time.time_ns()}", content_type=CAP_TYPE)


def test_an_empty_value_is_accepted(cap_api: tuple[Client, str, Keng]) -> None:
    client, secret, _ = cap_api
    extra = "<parameter><valueName>layer:Google:Region:0.1</valueName><value></value></parameter>"
    reply = post(client, alert(identifier="RW-1", infos=(info(extra=extra),)), secret)
    assert reply.status == 202, reply.body
    assert reply.json()["action"] == "submitted" and "warnings" not in reply.json()


def test_expires_equal_to_sent_is_accepted_with_a_warning_and_the_default_lifetime(
    cap_api: tuple[Client, str, Keng],
) -> None:
    client, secret, app = cap_api
    sent = (datetime.now(UTC) - timedelta(minutes=1)).replace(microsecond=0)
    reply = post(client, alert(identifier="RW-2", sent=sent, infos=(info(expires=sent),)), secret)
    assert reply.status == 202, reply.body
    [warning] = reply.json()["warnings"]
    assert warning.startswith("alert/info[1]/expires: equals alert/sent")
    item = app.broadcast(UUID(reply.json()["broadcast_ids"][0]))
    assert item.expires_at > datetime.now(UTC)


def test_a_resource_with_a_wrong_digest_is_refused_alone_the_alert_is_spoken_and_the_refusal_kept(
    cap_api: tuple[Client, str, Keng],
) -> None:
    client, secret, app = cap_api
    reply = post(client, alert(identifier="RW-3", infos=(info(severity="Moderate", extra=BAD_DIGEST),)), secret)
    assert reply.status == 202, reply.body
    outcome = reply.json()
    [warning] = outcome["warnings"]
    assert warning.startswith("alert/info[1]/resource[1]/derefUri: content does not match digest")
    item = app.broadcast(UUID(outcome["broadcast_ids"][0]))
    assert item.audio is None and item.state == "submitted"
    assert needs_audio(item)  # the renderer speaks the text (TTS): no recording and no recorded failure stand in
    time.sleep(0.5)  # attach_recording runs after the 202: it finds no usable resource and records nothing
    item = app.broadcast(item.id)
    assert item.renders == [] and item.render_failures == []
    inbound = find_inbound(app, "cap", item.source_ref or "", "kttv")
    assert inbound is not None and inbound.outcome["warnings"] == [warning]


@pytest.mark.parametrize("msg_type", ["Update", "Cancel"])
def test_an_update_or_cancel_with_empty_references_is_refused_and_stores_nothing(
    cap_api: tuple[Client, str, Keng], msg_type: str
) -> None:
    client, secret, app = cap_api
    before = app.max_position()
    reply = post(client, alert(identifier=f"RW-4-{msg_type}", msg_type=msg_type, references=" "), secret)
    assert reply.status == 422, reply.body
    errors = reply.json()["errors"]
    assert [e["path"] for e in errors] == ["alert/references"]
    assert "at least one earlier alert" in errors[0]["message"]
    assert app.max_position() == before
