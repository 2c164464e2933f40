"""The push worker of `keng serve`: bulletins to ward portals and the citizen app, and replies to feedback, as signed
webhooks (Standard Webhooks, the same scheme as delivery reports; the push id is the `webhook-id`, stable across
retries).

- A bulletin with the `portal` channel is queued for every portal integration whose jurisdiction it reaches (a ward's
  own bulletin, or one addressed to the district above it), one with the `app` channel for every app integration
  with a webhook URL; when the current revision is approved, once its audio is rendered (or after `render_wait_s`,
  an emergency never waits). The body carries the text, a signed audio link and the board images (PNG, base64).
- A cancelled or expired bulletin's pushes still undelivered are withdrawn; one already delivered is followed by a
  `bulletin.withdrawn` push to the same target. A newer approved revision withdraws the older one's pending pushes.
- Each push is retried with capped exponential backoff until a 2xx or its expiry (the bulletin's); each target is
  throttled (`asyncio-throttle`), and every attempt is an event (domain/push.py).

The worker holds the pushes that can still matter: open ones, and a delivered bulletin until its broadcast ends (it
is then followed by a withdrawal) or, at the latest, `KEEP_DELIVERED` past the bulletin's expiry; the others are
forgotten once closed, so that its memory follows what is live, not the log's history.

The URL is an admin's, yet it goes through the outbound guard (adapters/outbound.py): a loopback or private address
needs its host on the integration's fetch allowlist, and redirects are not followed.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
import structlog
from asyncio_throttle.throttler import Throttler

from keng.adapters.outbound import FetchPolicy, post_json
from keng.adapters.secrets import SecretStore
from keng.adapters.store.access import jurisdiction_codes, webhook_headers
from keng.adapters.store.app import Keng
from keng.adapters.store.errors import DuplicateRecord, NotFound
from keng.domain.access import Integration
from keng.domain.broadcast import Broadcast
from keng.domain.push import BULLETIN, PUSH_EVENTS, WITHDRAWN, Push, PushStatus
from keng.domain.report import backoff_s
from keng.domain.values import BroadcastState, Channel, Priority
from keng.services.access import integrations

log = structlog.get_logger(__name__)
APPROVED = (Broadcast.Approved, Broadcast.AutoApproved)
ENDED = (Broadcast.Cancelled, Broadcast.Expired, Broadcast.Rejected)
KIND_OF_CHANNEL = {Channel.PORTAL.value: "portal", Channel.APP.value: "app"}
WITHDRAWAL_TTL = timedelta(days=1)
KEEP_DELIVERED = timedelta(hours=1)  # a delivered bulletin is kept this long past its expiry (for its withdrawal)


def past(push: Push, now: datetime) -> bool:
    """True once a push's expiry is KEEP_DELIVERED behind `now` (never for one without an expiry)."""
    return push.expires_at is not None and now >= push.expires_at + KEEP_DELIVERED


def _reached_wards(scope: Iterable[str], covered: frozenset[str], parents: dict[str, str | None]) -> list[str]:
    """The covered wards a broadcast with this scope reaches: those in the scope, or under an area in it."""
    scope = set(scope)
    out = []
    for ward in covered:
        node: str | None = ward
        for _ in range(16):
            if node is None:
                break
            if node in scope:
                out.append(ward)
                break
            node = parents.get(node)
    return sorted(out)


class Pusher:
    """Queues, sends and withdraws pushes."""

    def __init__(
        self,
        app: Keng,
        secrets: SecretStore,
        *,
        assets_dir: Path | None = None,
        audio_url: Callable[[str, datetime], str] | None = None,
        poll_s: float = 1.0,
        timeout_s: float = 10.0,
        backoff_base_s: float = 2.0,
        rate_per_s: float = 5.0,
        render_wait_s: float = 10.0,
        concurrency: int = 16,
        active: Callable[[], bool] = lambda: True,
    ) -> None:
        self.active = active  # whether this worker sends now (one of several: the leader)
        self.app, self.secrets, self.assets_dir, self.audio_url = app, secrets, assets_dir, audio_url
        self.poll_s, self.timeout_s, self.backoff_base_s = poll_s, timeout_s, backoff_base_s
        self.rate_per_s, self.render_wait_s = rate_per_s, render_wait_s
        self.position = 0
        self.push_position = 0
        self.pushes: dict[UUID, Push] = {}
        self.waiting: dict[UUID, datetime] = {}  # approved broadcasts whose pushes wait for their audio
        self.throttlers: dict[str, Throttler] = {}
        self.limit = asyncio.Semaphore(concurrency)

    # -- following the log ------------------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Bring the pushes up to date (only new events; those this worker recorded itself are already applied)."""
        top = self.app.max_position()
        for note in self.app.notifications_of(PUSH_EVENTS, since=self.push_position, upto=top):
            event: Any = self.app.mapper.to_domain_event(note)
            current = self.pushes.get(event.originator_id)
            if current is None and event.originator_version > 1:
                pass  # a push forgotten once closed: nothing that follows matters here
            elif current is None or event.originator_version > current.version:
                self.pushes[event.originator_id] = event.mutate(current)
            self.push_position = note.id
        self.push_position = max(self.push_position, top)  # read up to here: the next call starts after it

    def queue_new(self, now: datetime | None = None) -> int:
        """Queue pushes for newly approved bulletins, withdraw those of ended ones; returns how many were queued."""
        now = now or datetime.now(UTC)
        self.refresh()
        top = self.app.max_position()
        for note in self.app.notifications_of((*APPROVED, *ENDED), since=self.position, upto=top, page=500):
            event: Any = self.app.mapper.to_domain_event(note)
            if isinstance(event, APPROVED):
                self.waiting.setdefault(event.originator_id, now)
            else:
                self.waiting.pop(event.originator_id, None)
                self._withdraw(event.originator_id, getattr(event, "reason", "") or type(event).__name__, now)
            self.position = note.id
        self.position = max(self.position, top)
        queued = 0
        for bid, since in list(self.waiting.items()):
            item = self.app.broadcast(bid)
            if BroadcastState(item.state).is_final or not item.is_approved:
                del self.waiting[bid]
                continue
            if not self._ready(item, (now - since).total_seconds()):
                continue
            del self.waiting[bid]
            queued += self._queue_bulletin(item, now)
        return queued

    def _ready(self, item: Broadcast, waited_s: float) -> bool:
        if item.priority == Priority.EMERGENCY or Channel.SPEAKER.value not in item.channels:
            return True
        has_audio = any(r["channel"] == "speaker" and r["revision"] == item.revision for r in item.renders)
        return has_audio or waited_s >= self.render_wait_s

    def _targets(self, item: Broadcast) -> list[tuple[Integration, list[str]]]:
        kinds = {KIND_OF_CHANNEL[c] for c in item.channels if c in KIND_OF_CHANNEL}
        if not kinds:
            return []
        tree = self.app.area_registry().in_force(self.app.clock())  # jurisdictions name today's units
        parents = tree.parents
        out = []
        for integration in integrations(self.app):
            if integration.kind not in kinds or not integration.report_url:
                continue
            wards = _reached_wards(item.scope, jurisdiction_codes(integration.jurisdiction, tree), parents)
            if wards or any(code in integration.jurisdiction for code in item.scope):
                out.append((integration, wards))
        return out

    def _body(self, item: Broadcast, now: datetime) -> dict[str, Any]:
        renders = [r for r in item.renders if r["revision"] == item.revision]
        audio = next((r for r in reversed(renders) if r["channel"] == "speaker"), None)
        body: dict[str, Any] = {
            "type": BULLETIN,
            "broadcast_id": str(item.id),
            "revision": item.revision,
            "title": item.title,
            "text": item.announced_text,
            "priority": str(item.priority),
            "drill": item.drill,
            "areas": list(item.scope),
            "expires_at": item.expires_at.isoformat(),
            "audio": None,
            "board_images": self._board_images(renders),
            "at": now.isoformat(timespec="seconds"),
        }
        if audio is not None:
            url = self.audio_url(audio["asset_hash"], item.expires_at) if self.audio_url else None
            body["audio"] = {"url": url, "sha256": audio["content_sha256"], "duration_s": audio["duration_s"]}
        return body

    def _board_images(self, renders: list[Any]) -> list[dict[str, str]]:
        images = []
        for r in renders:
            if r["channel"] != "eboard" or self.assets_dir is None:
                continue
            path = self.assets_dir / f"{r['asset_hash']}.png"
            if path.is_file() and path.stat().st_size <= 512 * 1024:
                images.append({"sha256": r["asset_hash"], "png_base64": base64.b64encode(path.read_bytes()).decode()})
        return images

    def _queue_bulletin(self, item: Broadcast, now: datetime) -> int:
        body, queued = self._body(item, now), 0
        for push in [p for p in self.pushes.values() if p.subject == str(item.id) and p.kind == BULLETIN]:
            if push.open and push.revision < item.revision:
                push.withdraw(f"superseded by revision {item.revision}")
                self.app.save_changes(push)
        for integration, wards in self._targets(item):
            push = Push.queue(
                target=integration.name,
                target_kind=integration.kind,
                url=str(integration.report_url),
                kind=BULLETIN,
                subject=str(item.id),
                revision=item.revision,
                wards=wards,
                body=body,
                expires_at=item.expires_at,
            )
            try:
                self.app.save_new(push, what="this push")
            except DuplicateRecord:
                continue
            self.pushes[push.id] = push
            queued += 1
        return queued

    def _withdraw(self, bid: UUID, reason: str, now: datetime) -> None:
        for push in [p for p in self.pushes.values() if p.subject == str(bid) and p.kind == BULLETIN]:
            if push.status == PushStatus.DELIVERED or not push.open:
                del self.pushes[push.id]  # done with: its withdrawal notice, if any, is a push of its own
            if push.open:
                push.withdraw(reason)
                self.app.save_changes(push)
                log.info("push.withdrawn", push_id=str(push.id), target=push.target, broadcast_id=str(bid))
            elif push.status == PushStatus.DELIVERED:
                notice = Push.queue(
                    target=push.target,
                    target_kind=push.target_kind,
                    url=push.url,
                    kind=WITHDRAWN,
                    subject=push.subject,
                    revision=push.revision,
                    wards=push.wards,
                    body={
                        "type": WITHDRAWN,
                        "broadcast_id": str(bid),
                        "revision": push.revision,
                        "reason": reason,
                        "at": now.isoformat(timespec="seconds"),
                    },
                    expires_at=now + WITHDRAWAL_TTL,
                )
                try:
                    self.app.save_new(notice, what="this push")
                except DuplicateRecord:
                    continue
                self.pushes[notice.id] = notice

    # -- sending ----------------------------------------------------------------------------------------------------

    def due(self, now: datetime) -> list[Push]:
        """Open pushes whose next attempt is due (those past their expiry are closed as expired first)."""
        self.refresh()
        out = []
        for push in list(self.pushes.values()):
            if not push.open:
                continue
            if push.expire(now):
                self.app.save_changes(push)
                log.info("push.expired", push_id=str(push.id), target=push.target, attempts=push.attempts)
                continue
            if push.attempts == 0 or (now - push.modified_on).total_seconds() >= backoff_s(
                push.attempts, self.backoff_base_s
            ):
                out.append(push)
        self.forget_closed(now)
        return out

    def forget_closed(self, now: datetime) -> None:
        """Forget the pushes that can no longer matter: closed ones, but a delivered bulletin, which is withdrawn
        when its broadcast ends, until KEEP_DELIVERED past its expiry."""
        for push in list(self.pushes.values()):
            if push.open or (push.kind == BULLETIN and push.status == PushStatus.DELIVERED and not past(push, now)):
                continue
            del self.pushes[push.id]

    def signed_headers(self, push: Push, body: bytes) -> tuple[dict[str, str] | None, frozenset[str]]:
        """The signed headers (None: no active secret) and the target's fetch allowlist."""
        try:
            return webhook_headers(self.app, self.secrets, push.target, str(push.id), body)
        except NotFound:
            return None, frozenset()

    def _throttler(self, target: str) -> Throttler:
        throttler = self.throttlers.get(target)
        if throttler is None:
            throttler = self.throttlers[target] = Throttler(rate_limit=max(1, int(self.rate_per_s)), period=1.0)
        return throttler

    async def send(self, push: Push) -> None:
        """One attempt (throttled per target); its outcome is recorded either way."""
        body = orjson.dumps(push.body)
        headers, hosts = await asyncio.to_thread(self.signed_headers, push, body)
        if headers is None:
            outcome: tuple[bool, int | str] = (False, "the target has no active secret to sign with")
        else:
            policy = FetchPolicy(allowed_hosts=hosts, timeout_s=self.timeout_s)
            async with self.limit, self._throttler(push.target):
                outcome = await post_json(push.url, body, headers, policy)
        await asyncio.to_thread(self._record, push, outcome)

    def _record(self, push: Push, outcome: tuple[bool, int | str]) -> None:
        if not push.open:  # withdrawn while the attempt was under way: the withdrawal stands
            return
        if outcome[0]:
            push.mark_delivered(int(outcome[1]))
        else:
            push.attempt_failed(str(outcome[1]))
        self.app.save_changes(push)
        log.info(
            "push.attempt",
            push_id=str(push.id),
            target=push.target,
            kind=push.kind,
            delivered=outcome[0],
            detail=outcome[1],
            attempt=push.attempts,
        )

    async def step(self) -> None:
        """One round: queue, withdraw, send what is due."""
        await asyncio.to_thread(self.queue_new)
        due = await asyncio.to_thread(self.due, datetime.now(UTC))
        await asyncio.gather(*(self.send(p) for p in due))

    async def run(self) -> None:
        """Until cancelled."""
        while True:
            if not self.active():  # another worker pushes (runtime/dispatch/partitions.py, the leader)
                await asyncio.sleep(self.poll_s)
                continue
            try:
                await self.step()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("push.round_failed")
            await asyncio.sleep(self.poll_s)
