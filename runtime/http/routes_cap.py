"""CAP 1.2 in (`POST /api/v1/cap`, signed like the webhooks) and out (`/cap/{id}.xml`, `/feeds/alerts.atom`,
`/feeds/alerts.json` for the citizen app with the full text of every spoken bulletin).

Inbound CAP is idempotent on `sender,identifier,sent`, per integration: the key is checked in the event store before
anything is done, the same key with another body is refused (422), and each accepted message is recorded as an
`Inbound` event tied to what it did, in the same transaction. Refusals (parse, validation, mapping, jurisdiction, a
sender or an alert the integration does not own) are 4xx problems and store nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import replace
from typing import Any
from uuid import UUID

import structlog
from aiohttp import web

from adapters.audio_upload import UploadRefused
from adapters.cap.errors import CapError, status_for
from adapters.cap.feeds import atom_feed, feed_item, is_current_public, json_feed
from adapters.cap.ingest import IngestResult, prepare_cap
from adapters.cap.parse import parse_cap
from adapters.cap.places import PlaceIndex
from adapters.cap.render import CAP_MEDIA_TYPE, broadcast_to_cap
from adapters.private_files import private_dir, write_private
from adapters.recordings import fetch_recording, store_recording
from adapters.store.access import VerifiedInbound, find_inbound, record_inbound, replayed_outcome, verify_inbound
from adapters.store.errors import ConcurrencyConflict, DuplicateRecord
from domain.actor import integration_of
from domain.cap import CapAlert
from domain.cap_mapping import CapPlan
from domain.cap_places import CapRefused
from domain.standing_orders import first_match
from domain.values import BroadcastState
from runtime.errors import headline_for
from runtime.http.problems import Problem
from runtime.http.services import SERVICES, Services

SOURCE = "cap"
ACCEPTED_TYPES = (CAP_MEDIA_TYPE, "application/xml", "text/xml")
_PLACES = web.AppKey("cap_places", PlaceIndex)
_TASKS: web.AppKey[set[asyncio.Task[None]]] = web.AppKey("cap_tasks")
_ATTEMPTS = 3
log = structlog.get_logger(__name__)


def _standing_order(services: Services, sender: str) -> Any:
    def rule_for(alert: CapAlert, plan: CapPlan) -> str | None:
        info = next((i for i in alert.infos if i.language.lower().startswith("vi")), alert.infos[0])
        events = [info.event, *(c.value for c in info.categories)]
        return first_match(
            services.standing_orders,
            sender=sender,
            events=events,
            severity=info.severity.value,
            urgency=info.urgency.value,
            priority=plan.priority.value if plan.priority else None,
        )

    return rule_for


def _outcome(result: IngestResult) -> dict[str, Any]:
    return {
        "action": result.action,
        "key": result.key,
        "status": result.status,
        "msg_type": result.msg_type,
        "broadcast_ids": [str(b) for b in result.broadcast_ids],
        "stop_required": result.stop_required,
        "reason": result.reason,
    }


def accept_cap(
    services: Services, places: PlaceIndex, verified: VerifiedInbound, raw: bytes
) -> tuple[dict[str, Any], bool]:
    """Ingest one verified CAP message (or answer a replay with its original outcome). What the message does and its
    Inbound record are saved in one transaction: a concurrent duplicate that loses the race finds the winner's record
    and answers with its outcome, as a replay."""
    alert = parse_cap(raw)
    # CAP's own `sender,identifier,sent` is the idempotency key (not the transport's webhook id).
    keyed = replace(verified, verified=replace(verified.verified, message_id=alert.key))
    attempt = 0
    while True:
        attempt += 1
        earlier = replayed_outcome(services.app, SOURCE, keyed)
        if earlier is not None:
            return earlier, True
        actor = verified.actor(services.area_cache.get())
        pending = prepare_cap(
            services.app,
            raw,
            sender_jurisdiction=list(actor.area_codes),
            actor=actor,
            places=places,
            standing_order=_standing_order(services, verified.integration.name),
        )
        outcome = _outcome(pending.result)
        # The document itself is kept as received (every info block, in every language) and tied to the Inbound
        # record by its SHA-256; /cap/{id}.xml republishes it while the broadcast is unrevised.
        outcome["document_sha256"] = keep_document(services, raw)
        outcome["languages"] = sorted({i.language for i in alert.infos})
        try:
            pending.commit(record_inbound(SOURCE, keyed, outcome))
        except (DuplicateRecord, ConcurrencyConflict):
            if attempt >= _ATTEMPTS:
                raise
            continue  # another writer came first: its record answers on the next turn (or the broadcast is re-read)
        return outcome, False


def keep_document(services: Services, raw: bytes) -> str:
    """Store a received CAP document under its SHA-256 (idempotent); returns the hash."""
    digest = hashlib.sha256(raw).hexdigest()
    path = private_dir(services.settings.data_dir / "cap") / f"{digest}.xml"
    if not path.exists():
        write_private(path, raw)
    return digest


def original_document(services: Services, item: Any) -> bytes | None:
    """The CAP document a broadcast was created from, if it is unrevised since and the document was kept."""
    if item.source_kind != SOURCE or item.revision != 0 or not item.source_ref:
        return None
    inbound = find_inbound(services.app, SOURCE, item.source_ref, integration_of(item.drafted_by))
    if inbound is None:
        return None
    digest = inbound.outcome.get("document_sha256")
    path = services.settings.data_dir / "cap" / f"{digest}.xml"
    return path.read_bytes() if digest and path.exists() else None


async def cap_ingest(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    if request.content_type not in ACCEPTED_TYPES:
        raise Problem(415, "unsupported-media-type", f"expected {CAP_MEDIA_TYPE}, got {request.content_type!r}")
    raw = await request.read()
    now = services.wall_clock()

    def handle() -> tuple[dict[str, Any], bool, frozenset[str]]:
        verified = verify_inbound(
            services.app, services.secrets, services.integrations(SOURCE), headers=request.headers, body=raw, now=now
        )
        outcome, replayed = accept_cap(services, request.app[_PLACES], verified, raw)
        return outcome, replayed, frozenset(verified.integration.fetch_hosts)

    try:
        outcome, replayed, fetch_hosts = await services.run(handle)
    except CapError as e:
        errors = [{"path": v.path, "message": v.message} for v in e.violations]
        detail = "; ".join([str(e), *(f"{v['path']}: {v['message']}" for v in errors[:20])])
        problem = Problem(status_for(e) or 422, "invalid-cap", detail, errors)
        services.metrics.webhooks.labels(SOURCE, "invalid-cap").inc()
        raise problem from None
    except CapRefused as e:
        services.metrics.webhooks.labels(SOURCE, "refused").inc()
        raise Problem(422, "cap-refused", str(e), headline_vi=headline_for(e)) from None
    services.metrics.webhooks.labels(SOURCE, "replayed" if replayed else "accepted").inc()
    if not replayed and outcome["broadcast_ids"]:
        # The alert's recording (inline, or fetched from its URI) is stored and recorded without delaying the 202.
        ids = [UUID(b) for b in outcome["broadcast_ids"]]
        task = asyncio.create_task(attach_recording(services, raw, ids, fetch_hosts))
        request.app[_TASKS].add(task)
        task.add_done_callback(request.app[_TASKS].discard)
    return web.json_response(outcome, status=202, headers={"Idempotent-Replayed": "true"} if replayed else None)


async def cap_document(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    try:
        bid = UUID(request.match_info["id"])
    except ValueError:
        raise Problem(404, "not-found", "not a broadcast id") from None

    def render() -> bytes:
        item = services.app.broadcast(bid)
        cancelled = item.state == BroadcastState.CANCELLED
        if not is_current_public(item, item.channels, services.app.clock()) and not cancelled:
            raise Problem(404, "not-found", "no public alert with this id")
        original = original_document(services, item) if not cancelled else None
        if original is not None:
            return original
        names = {a.code: a.name for a in services.area_cache.get()}
        return broadcast_to_cap(item, area_names=names, base_url=services.public_url)

    # The document is sent as bytes in its own declared encoding (a kept original may be ISO-8859-1).
    return web.Response(body=await services.run(render), content_type=CAP_MEDIA_TYPE)


def _current_items(services: Services) -> list[Any]:
    now = services.app.clock()
    names = {a.code: a.name for a in services.area_cache.get()}
    return [
        feed_item(b, names) for b in services.catalog.current().broadcasts() if is_current_public(b, b.channels, now)
    ]


async def atom(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    body = await services.run(lambda: atom_feed(_current_items(services), services.public_url))
    return web.Response(body=body, content_type="application/atom+xml", charset="utf-8")


async def json_items(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    body = await services.run(lambda: json_feed(_current_items(services), services.public_url))
    return web.Response(body=body, content_type="application/feed+json", charset="utf-8")


async def attach_recording(
    services: Services, raw: bytes, broadcast_ids: list[UUID], fetch_hosts: frozenset[str] = frozenset()
) -> None:
    """Store the alert's first audio resource and record it as each broadcast's speaker audio (`Rendered`, engine
    `cap-resource`), or record why it could not be used (`RenderFailed`); the broadcast goes out either way. A URI is
    fetched through the outbound guard, with the sending integration's allowlisted hosts (`fetch_hosts`)."""
    alert = parse_cap(raw)
    resource = next((r for i in alert.infos for r in i.resources if r.mime_type.lower().startswith("audio/")), None)
    if resource is None or (resource.data is None and not resource.uri):
        return
    try:
        data = resource.data
        if data is None and resource.uri:
            data = await fetch_recording(resource.uri, sha1_digest=resource.digest, allowed_hosts=fetch_hosts)
        assert data is not None
        root = services.settings.data_dir / "assets"
        asset = await services.run(lambda: store_recording(root, data, source="cap-resource"))
        outcome: tuple[str, ...] = (
            "ok",
            asset.key,
            str(asset.duration_s),
            hashlib.sha256(asset.path.read_bytes()).hexdigest(),
        )
    except UploadRefused as e:
        outcome = ("failed", str(e))
    await services.run(lambda: _record_recording(services, broadcast_ids, outcome))


def _record_recording(services: Services, broadcast_ids: list[UUID], outcome: tuple[str, ...]) -> None:
    for bid in broadcast_ids:
        for _ in range(3):  # the dispatcher may be writing the same broadcast: retry on a conflict
            item = services.app.broadcast(bid)
            if outcome[0] == "ok":
                item.record_render(
                    channel="speaker",
                    asset_hash=outcome[1],
                    duration_s=float(outcome[2]),
                    engine="cap-resource",
                    content_sha256=outcome[3],
                )
            else:
                item.record_render_failure(channel="speaker", engine="cap-resource", reason=outcome[1])
            try:
                services.app.save_changes(item)
                break
            except ConcurrencyConflict:
                continue
    reason = outcome[1] if outcome[0] == "failed" else None
    log.info("cap.recording", outcome=outcome[0], reason=reason, broadcasts=[str(b) for b in broadcast_ids])


async def _cancel_tasks(app: web.Application) -> None:
    tasks: set[asyncio.Task[None]] = app[_TASKS]
    for task in tuple(tasks):
        task.cancel()


def add_routes(app: web.Application) -> None:
    app[_PLACES] = PlaceIndex()
    app[_TASKS] = set()
    app.on_shutdown.append(_cancel_tasks)
    app.router.add_post("/api/v1/cap", cap_ingest)
    app.router.add_get("/cap/{id}.xml", cap_document)
    app.router.add_get("/feeds/alerts.atom", atom)
    app.router.add_get("/feeds/alerts.json", json_items)
