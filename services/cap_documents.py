"""What an accepted CAP alert leaves beside its records: the document as received, and its recording.

Why a module of its own: `/cap/{id}.xml` republishes the kept document (a query, not part of accepting), and the
recording is attached after the 202 (fetching a URI must not delay the answer); both share the layout of the data
directory with `keep_document`, which `services.inbound` calls while accepting.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from uuid import UUID

import structlog

from keng.adapters.audio_upload import UploadRefused
from keng.adapters.cap.parse import parse_cap
from keng.adapters.private_files import private_dir, write_private
from keng.adapters.recordings import fetch_recording, store_recording
from keng.adapters.store.access import find_inbound
from keng.adapters.store.app import Keng
from keng.adapters.store.errors import ConcurrencyConflict
from keng.domain.actor import integration_of
from keng.domain.broadcast import Broadcast
from keng.domain.values import SourceKind

SOURCE = SourceKind.CAP.value
log = structlog.get_logger(__name__)


def keep_document(data_dir: Path, raw: bytes) -> str:
    """Store a received CAP document under its SHA-256 (idempotent, a private file); returns the hash."""
    digest = hashlib.sha256(raw).hexdigest()
    path = private_dir(data_dir / "cap") / f"{digest}.xml"
    if not path.exists():
        write_private(path, raw)
    return digest


def original_document(app: Keng, data_dir: Path, item: Broadcast) -> bytes | None:
    """The CAP document a broadcast was created from, if it is unrevised since and the document was kept."""
    if item.source_kind != SOURCE or item.revision != 0 or not item.source_ref:
        return None
    inbound = find_inbound(app, SOURCE, item.source_ref, integration_of(item.drafted_by))
    if inbound is None:
        return None
    digest = inbound.outcome.get("document_sha256")
    path = data_dir / "cap" / f"{digest}.xml"
    return path.read_bytes() if digest and path.exists() else None


async def attach_recording(
    app: Keng, data_dir: Path, raw: bytes, broadcast_ids: list[UUID], fetch_hosts: frozenset[str] = frozenset()
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
        asset = await asyncio.to_thread(store_recording, data_dir / "assets", data, source="cap-resource")
        outcome: tuple[str, ...] = (
            "ok",
            asset.key,
            str(asset.duration_s),
            hashlib.sha256(asset.path.read_bytes()).hexdigest(),
        )
    except UploadRefused as e:
        outcome = ("failed", str(e))
    await asyncio.to_thread(_record_recording, app, broadcast_ids, outcome)


def _record_recording(app: Keng, broadcast_ids: list[UUID], outcome: tuple[str, ...]) -> None:
    for bid in broadcast_ids:
        for _ in range(3):  # the dispatcher may be writing the same broadcast: retry on a conflict
            item = app.broadcast(bid)
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
                app.save_changes(item)
                break
            except ConcurrencyConflict:
                continue
    reason = outcome[1] if outcome[0] == "failed" else None
    log.info("cap.recording", outcome=outcome[0], reason=reason, broadcasts=[str(b) for b in broadcast_ids])
