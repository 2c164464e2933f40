"""The delivery-report worker of `keng serve`: tells the city source system what became of each message it sent.

When a broadcast that came from a city-source message ends (completed, cancelled, rejected, expired), a
`DeliveryReport` is queued for the integration that sent it (if it configured a report URL), then POSTed, signed the
same way as inbound webhooks (Standard Webhooks, the report's id as `webhook-id`), and retried with capped
exponential backoff until the receiver answers 2xx. Every attempt is recorded; the schedule is derived from the
recorded attempts, so a restart neither loses nor repeats work.

The report URL is set by an admin, yet it goes through the same outbound guard as a URL in a message
(adapters/outbound.py): a loopback or private address needs its host on the integration's fetch allowlist, redirects
are not followed, and a failed attempt records a generic reason (a receiver's HTTP status is kept: it comes from a
vetted destination).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog

from keng.adapters.outbound import FetchPolicy, post_json
from keng.adapters.secrets import SecretStore
from keng.adapters.store.access import find_inbound, webhook_headers
from keng.adapters.store.app import Keng
from keng.adapters.store.errors import ConcurrencyConflict, DuplicateRecord, NotFound
from keng.domain.access import Integration, integration_id
from keng.domain.actor import integration_of
from keng.domain.broadcast import STATE_AFTER
from keng.domain.report import DeliveryReport, backoff_s, report_id

log = structlog.get_logger(__name__)
SOURCE = "city-source"
FINAL = {event: str(state) for event, state in STATE_AFTER.items() if state.is_final}  # the event that ended it
REPORT_EVENTS = (DeliveryReport.Queued, DeliveryReport.AttemptFailed, DeliveryReport.Delivered)


class Reporter:
    """Queues and sends delivery reports."""

    def __init__(
        self,
        app: Keng,
        secrets: SecretStore,
        *,
        poll_s: float = 1.0,
        timeout_s: float = 10.0,
        backoff_base_s: float = 2.0,
        active: Callable[[], bool] = lambda: True,
    ) -> None:
        self.active = active  # whether this worker sends now (one of several: the leader)
        self.app, self.secrets, self.poll_s, self.timeout_s = app, secrets, poll_s, timeout_s
        self.backoff_base_s = backoff_base_s
        self.position = 0  # final broadcast events read up to here
        self.reports: dict[Any, DeliveryReport] = {}  # undelivered reports, folded from the log
        self.report_position = 0

    def queue_new(self) -> int:
        """Queue reports for broadcasts that ended since the last call; returns how many were queued."""
        top = self.app.max_position()
        queued = 0
        for note in self.app.notifications_of(tuple(FINAL), since=self.position, upto=top, page=500):
            event: Any = self.app.mapper.to_domain_event(note)
            queued += self._queue_for(event.originator_id, FINAL[type(event)], getattr(event, "summary", {}))
            self.position = note.id
        self.position = max(self.position, top)  # read up to here: the next call starts after it
        return queued

    def _queue_for(self, broadcast_id: Any, outcome: str, summary: dict[str, Any]) -> int:
        item = self.app.broadcast(broadcast_id)
        if item.source_kind != SOURCE or not item.source_ref or self.app.exists(report_id(item.id, outcome)):
            return 0
        inbound = find_inbound(self.app, SOURCE, item.source_ref, integration_of(item.drafted_by))
        if inbound is None:
            return 0
        try:
            integration = self.app.load(Integration, integration_id(inbound.integration), "integration")
        except NotFound:
            return 0
        if not integration.report_url:
            return 0
        body = {
            "message_id": item.source_ref,
            "broadcast_id": str(item.id),
            "outcome": outcome,
            "state": item.state,
            "summary": summary,
            "reason": item.end_reason,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        report = DeliveryReport.queue(
            integration=integration.name,
            url=integration.report_url,
            broadcast_id=item.id,
            message_id=item.source_ref,
            outcome=outcome,
            body=body,
        )
        try:
            self.app.save_new(report, what="this delivery report")
        except DuplicateRecord:
            return 0
        return 1

    def due(self, now: datetime) -> list[DeliveryReport]:
        """Undelivered reports whose next attempt is due (the reports folded from what is new in the log since the
        last call: a delivered one is forgotten, nothing follows it)."""
        top = self.app.max_position()
        for note in self.app.notifications_of(REPORT_EVENTS, since=self.report_position, upto=top):
            event: Any = self.app.mapper.to_domain_event(note)
            current = self.reports.get(event.originator_id)
            if current is None or event.originator_version > current.version:  # this worker's own are applied
                self.reports[event.originator_id] = event.mutate(current)
        self.report_position = max(self.report_position, top)
        for rid in [rid for rid, r in self.reports.items() if r.delivered]:
            del self.reports[rid]
        return [
            r
            for r in self.reports.values()
            if r.attempts == 0 or (now - r.modified_on).total_seconds() >= backoff_s(r.attempts, self.backoff_base_s)
        ]

    def signed_headers(self, report: DeliveryReport, body: bytes) -> tuple[dict[str, str] | None, frozenset[str]]:
        """The signed headers (None: no active secret) and the integration's fetch allowlist."""
        return webhook_headers(self.app, self.secrets, report.integration, str(report.id), body)

    async def send(self, report: DeliveryReport) -> None:
        """One attempt; its outcome is recorded either way."""
        body = orjson.dumps(report.body)
        headers, hosts = await asyncio.to_thread(self.signed_headers, report, body)
        if headers is None:
            outcome: tuple[bool, int | str] = (False, "the integration has no active secret to sign with")
        else:
            outcome = await post_json(
                report.url, body, headers, FetchPolicy(allowed_hosts=hosts, timeout_s=self.timeout_s)
            )
        await asyncio.to_thread(self._record, report, outcome)

    def _record(self, report: DeliveryReport, outcome: tuple[bool, int | str]) -> None:
        if outcome[0]:
            report.mark_delivered(int(outcome[1]))
        else:
            report.attempt_failed(str(outcome[1]))
        try:
            self.app.save_changes(report)
        except ConcurrencyConflict:  # another service's reporter recorded an attempt first: its record stands
            self.reports[report.id] = self.app.repository.get(report.id)
            log.warning("report.attempt_not_recorded", report_id=str(report.id), reason="recorded elsewhere first")
            return
        except Exception:  # not saved: the reports held are read again from the log next time, as stored
            self.reports.clear()
            self.report_position = 0
            raise
        log.info(
            "report.attempt", report_id=str(report.id), delivered=outcome[0], detail=outcome[1], attempt=report.attempts
        )

    async def run(self) -> None:
        """Queue and send until cancelled."""
        while True:
            if not self.active():  # another worker sends them (runtime/dispatch/partitions.py, the leader)
                await asyncio.sleep(self.poll_s)
                continue
            await asyncio.to_thread(self.queue_new)
            for report in await asyncio.to_thread(self.due, datetime.now(UTC)):
                await self.send(report)
            await asyncio.sleep(self.poll_s)
