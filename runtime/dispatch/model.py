"""The dispatcher's view of the log: folded from the notification log, position by position, on one thread.

Why a pull follower: in eventsourcing 9.5.6 the SQLite recorder cannot `subscribe()`, so the dispatcher pulls the
notification log from the position it has processed (the same code runs on PostgreSQL). It keeps no state of its own
that the log does not hold: every decision it takes is recorded as an event with a deterministic id (dispatch ids
derive from broadcast and wave), so a dispatcher that crashes replays the log on start, finds approved broadcasts
without a dispatch, open dispatches and their recorded acks, and carries on; a duplicate decision collides in the
store instead of sending twice. All methods run on the dispatcher's single store thread.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import structlog
from eventsourcing.domain import Aggregate

from keng.adapters.mqtt import protocol as proto
from keng.adapters.store.app import Clock, Keng
from keng.adapters.store.errors import ConcurrencyConflict, DuplicateRecord
from keng.adapters.store.topics import stored_topic
from keng.domain.area import Area, day_start
from keng.domain.area_registry import AreaRegistry
from keng.domain.broadcast import AWAITING_RELEASE, Broadcast
from keng.domain.dispatch import Dispatch, item_hashes, note_first_acks
from keng.domain.display import board_resolution
from keng.domain.endpoint import Endpoint
from keng.domain.errors import UnknownArea
from keng.domain.ids import endpoint_id as _endpoint_id
from keng.domain.programme import VIETNAM_TZ, Programme
from keng.domain.records import Ack, BudgetVerdict, DispatchSummary
from keng.domain.recurring import RecurringProgramme
from keng.domain.values import BroadcastState, DispatchOutcome, Priority
from keng.domain.ward_schedule import WardSchedule
from keng.runtime.dispatch.content import ItemContent, ItemParts
from keng.runtime.dispatch.partitions import partition_key
from keng.runtime.dispatch.plan import Arm, Cancel, Deliver, Known, Plan, Reaction, Target, play_commands
from keng.runtime.dispatch.programmes import occurrences_due

log = structlog.get_logger(__name__)
# The aggregates the dispatcher folds, as stored topic prefixes; every other event is passed over undecoded (a busy
# service records inbound messages, tokens and reports by the thousand).
FOLDED = tuple(
    root + stored_topic(kind).partition(":")[0] + ":"
    for kind in (Area, Broadcast, Dispatch, Endpoint, RecurringProgramme, WardSchedule)
    for root in ("", "keng.")
)


def _topic_suffix(kind: type) -> str:
    """The end of an event class's stored topic (`:Broadcast.Approved`), as notifications carry it."""
    return ":" + stored_topic(kind).partition(":")[2]


# Forgetting (DispatchModel.forget): how often, and how long a broadcast waiting for its approval stays in memory
# unchanged; the events that bring a forgotten broadcast back (the ones the dispatcher acts on).
FORGET_EVERY = timedelta(seconds=10)
IDLE_PENDING = timedelta(seconds=60)
PENDING = (BroadcastState.DRAFT, BroadcastState.SUBMITTED)
RECALLED_BY = tuple(
    _topic_suffix(kind)
    for kind in (
        Broadcast.Approved,
        Broadcast.AutoApproved,
        Broadcast.Cancelled,
        Broadcast.Revised,
        Broadcast.SubmittedForApproval,
    )
)
# Where nothing renders ahead (keng serve: its render processes make a submitted broadcast's audio), a broadcast is
# not read until it matters: its creation is passed over undecoded, and its submission brings nothing back, as for a
# forgotten one. A busy service drafts a broadcast for every inbound message; decoding each on the serving process
# cost the HTTP path its latency (docs/tts.md, Ingest beside rendering).
LAZY_CREATED = (_topic_suffix(Broadcast.Drafted),)
RECALLED_BY_WITHOUT_AHEAD = tuple(t for t in RECALLED_BY if t != _topic_suffix(Broadcast.SubmittedForApproval))
__all__ = ["Arm", "Cancel", "Deliver", "DispatchModel", "Known", "Plan", "Reaction", "Target"]


class DispatchModel:
    """Aggregates folded from the log, and the dispatcher's writes (all on one thread)."""

    def __init__(
        self,
        app: Keng,
        *,
        programme: Programme,
        clock: Clock,
        audio_base: str,
        sign_audio: Callable[[str, datetime], str] | None = None,
        topics: proto.Topics = proto.DEFAULT_TOPICS,
        content: ItemContent | None = None,
        board_base: str | None = None,
        prepare_ahead: bool = True,
    ) -> None:
        self.app = app
        self.prepare_ahead = prepare_ahead  # off where render processes make submitted broadcasts' audio (keng serve)
        self._lazy_created = () if prepare_ahead else LAZY_CREATED
        self._recalled_by = RECALLED_BY if prepare_ahead else RECALLED_BY_WITHOUT_AHEAD
        self.topics = topics
        self.base_programme = self.programme = programme
        self.clock = clock
        self.audio_base = audio_base.rstrip("/")
        # Board pages are served beside the audio: `<service>/board/<sha256>.png` when audio is `<service>/audio`.
        self.board_base = (board_base or f"{self.audio_base.removesuffix('/audio')}/board").rstrip("/")
        self.sign_audio = sign_audio
        self.content = content or ItemContent(temporary_assets())
        self.aggs: dict[UUID, Aggregate] = {}
        self.position = 0
        self.caught_up = False
        self.approved_at: dict[UUID, datetime] = {}
        self.first_at: dict[UUID, dict[str, datetime]] = {}
        self._next_materialise = datetime.min.replace(tzinfo=UTC)
        self._refused: set[tuple[str, datetime]] = set()  # programme occurrences the domain refused
        # area code -> its chain on the tree in force on `_chains_day`; read again when an area event is folded
        # (the day is forgotten) or the day changes
        self._chains: dict[str, list[str]] = {}
        self._chains_day: str | None = None
        self._parents: dict[str, str | None] = {}
        self._registry = AreaRegistry(())
        self._targets_at: dict[UUID, datetime] = {}  # broadcast id -> when its target areas were recorded
        self._drafted_on: dict[UUID, datetime] = {}  # broadcast id -> its Drafted event's time, until forgotten
        self._next_forget = datetime.min.replace(tzinfo=UTC)
        self.forgotten = 0  # aggregates let go (`forget`)
        self.recalled = 0  # forgotten ones fetched again because they mattered again
        # Whose work is this (runtime/dispatch/partitions.py): a partition key -> this worker's now; the leader makes
        # the programmes' occurrences. A lone dispatcher owns everything.
        self.owns: Callable[[str], bool] = lambda key: True
        self.leads: Callable[[], bool] = lambda: True

    def audio_url(self, key: str, expires_at: datetime) -> str:
        """Where devices fetch an asset: `<base>/<key>`, with a signed query valid until the broadcast expires."""
        query = self.sign_audio(key, expires_at) if self.sign_audio else ""
        return f"{self.audio_base}/{key}" + (f"?{query}" if query else "")

    def board_url(self, name: str, expires_at: datetime) -> str:
        """Where boards fetch a page file (`<sha256>.png` or `.json`), signed for its hash like audio."""
        query = self.sign_audio(name.partition(".")[0], expires_at) if self.sign_audio else ""
        return f"{self.board_base}/{name}" + (f"?{query}" if query else "")

    # -- following the log --------------------------------------------------------------------------------------

    def step(self, limit: int = 5000) -> list[Reaction]:
        """Fold the next events; return reactions (after the first catch-up, which ends in `reconcile`)."""
        reactions: list[Reaction] = []
        opened: list[UUID] = []  # dispatches another worker opened, read now
        notifications = self.app.recorder.select_notifications(start=self.position + 1, limit=limit)
        for n in notifications:
            if not n.topic.startswith(FOLDED):  # staff, integrations, inbound messages, reports ...: not needed here
                self.position = n.id
                continue
            oid = n.originator_id
            oid = oid if isinstance(oid, UUID) else UUID(oid)
            current = self.aggs.get(oid)
            # forgotten (`forget`) or not read yet (LAZY_CREATED): back only once it matters
            if current is None and (n.originator_version > 1 or n.topic.endswith(self._lazy_created)):
                if not n.topic.endswith(self._recalled_by):
                    self.position = n.id
                    continue
                current = self.aggs[oid] = self.app.repository.get(oid, version=n.originator_version - 1)
                self.recalled += 1
            # Our own writes (1,000 acks an event during a dispatch) are applied already: skip them undecoded.
            if current is None or n.originator_version > current.version:
                event = self.app.mapper.to_domain_event(n)
                self._fold(event, current)
                if self.caught_up:
                    reactions.extend(self._react(event))
                    if isinstance(event, Dispatch.Opened):
                        opened.append(event.originator_id)
            self.position = n.id
        reactions.extend(self._taken_before_read(opened))
        if not self.caught_up and len(notifications) < limit:
            self.caught_up = True
            reactions.extend(self.reconcile())
        if self.caught_up and not notifications and self.clock() >= self._next_materialise and self.leads():
            self._next_materialise = self.clock() + timedelta(seconds=1)
            self.materialise()
        if self.clock() >= self._next_forget:
            self._next_forget = self.clock() + FORGET_EVERY
            self.forget()
        return reactions

    def forget(self) -> int:
        """Let go of what no longer needs the dispatcher, so that its memory is bounded by what is live, not by the
        log's history: broadcasts in a final state with every dispatch closed (and those dispatches), and
        broadcasts waiting for an approval that have not changed for `IDLE_PENDING` (fetched again from the store
        when approved, revised, submitted or cancelled). Returns how many aggregates were let go."""
        now = self.clock()
        gone: list[UUID] = []
        for b in self.of_type(Broadcast):
            dispatches = [self.aggs.get(d) for d in b.dispatches]
            if b.state.is_final and not any(isinstance(d, Dispatch) and not d.closed for d in dispatches):
                gone.append(b.id)
                gone.extend(d.id for d in dispatches if isinstance(d, Dispatch))
            elif b.state in PENDING and not b.dispatches and now - b.modified_on >= IDLE_PENDING:
                gone.append(b.id)
        for oid in gone:
            self.aggs.pop(oid, None)
            self.approved_at.pop(oid, None)
            self.first_at.pop(oid, None)
            drafted = self._drafted_on.pop(oid, None)
            if drafted is not None and self._targets_at.get(oid) == drafted:
                self._targets_at.pop(oid)  # never revised: its creation time, read when recalled, says the same
        self.forgotten += len(gone)
        return len(gone)

    def _taken_before_read(self, opened: list[UUID]) -> list[Reaction]:
        """Dispatches another worker opened that are this worker's to deliver, still open once what was read with
        their opening is folded. A dispatch is opened by the holder of its slot; read here as this worker's, the slot
        changed hands after the opening and before this worker read it (it took the slot over while behind the
        log): `reconcile` found the broadcast released then, with nothing to deliver, so it is delivered now,
        resumed. (The dispatcher delivers a dispatch once: one live here already is left as it is.)"""
        out: list[Reaction] = []
        for did in opened:
            d = self.aggs.get(did)
            b = self.aggs.get(d.broadcast_id) if isinstance(d, Dispatch) else None
            if isinstance(d, Dispatch) and not d.closed and isinstance(b, Broadcast) and self.mine(b):
                log.info("dispatch.opened_elsewhere_taken", dispatch_id=str(did), broadcast_id=str(b.id))
                out.append(Deliver(self._plan(b, d, resumed=True)))
        return out

    def _fold(self, event: Any, current: Aggregate | None) -> None:
        folded = self.aggs[event.originator_id] = event.mutate(current)
        if isinstance(folded, Area):
            self._chains_day = None  # the tree is read again at the next walk
        elif isinstance(folded, WardSchedule):
            self.programme = folded.applied_to(self.programme)
        if isinstance(event, Broadcast.Drafted | Broadcast.Revised):
            self._targets_at[event.originator_id] = event.timestamp
            if isinstance(event, Broadcast.Drafted):
                self._drafted_on[event.originator_id] = event.timestamp
        elif isinstance(event, Broadcast.Approved | Broadcast.AutoApproved):
            self.approved_at[event.originator_id] = event.timestamp
        elif isinstance(event, Dispatch.AcksRecorded):
            note_first_acks(self.first_at.setdefault(event.originator_id, {}), event.acks)

    def mine(self, b: Aggregate | None) -> bool:
        """Whether a broadcast's dispatches are this worker's (its partition's slot is held here)."""
        return isinstance(b, Broadcast) and self.owns(partition_key(b.scope))

    def _react(self, event: Any) -> list[Reaction]:
        folded = self.aggs.get(event.originator_id)
        if isinstance(folded, Broadcast) and not self.mine(folded):
            return []  # another worker's (an endpoint's registration below concerns every worker)
        if isinstance(event, Broadcast.Approved | Broadcast.AutoApproved):
            return self.release(event.originator_id)
        if isinstance(event, Broadcast.Cancelled):
            return [Cancel(event.originator_id, self._open_plans(event.originator_id))]
        if isinstance(event, Broadcast.SubmittedForApproval | Broadcast.Revised):
            self._prepare(event.originator_id)
        elif isinstance(event, Endpoint.Registered):
            return [Known(event.code, None, proto.CLASS_OF_KIND.get(event.kind, ""))]
        return []

    def _prepare(self, broadcast_id: UUID) -> None:
        """A broadcast was submitted: make its files ahead of the approval (in the background; nothing recorded)."""
        if not self.prepare_ahead:
            return
        b = self.aggs.get(broadcast_id)
        if isinstance(b, Broadcast) and b.state in (*AWAITING_RELEASE, BroadcastState.SUBMITTED):
            targets = self.resolve(b).values()
            self.content.prepare(
                b,
                speakers=any(t.cls == proto.SPEAKER for t in targets),
                resolutions={t.display for t in targets if t.display},
            )

    def reconcile(self, slots: Callable[[str], bool] | None = None) -> list[Reaction]:
        """After a (re)start: every endpoint, and every broadcast of this worker's that still needs the dispatcher.
        With `slots` (partition keys -> just gained): only those broadcasts, taken over from the log."""
        out: list[Reaction] = []
        if slots is None:
            out = [
                Known(e.code, e.online, proto.CLASS_OF_KIND.get(e.kind, ""))
                for e in self.of_type(Endpoint)
                if e.commandable
            ]
        for b in self.of_type(Broadcast):
            if not self.mine(b) or (slots is not None and not slots(partition_key(b.scope))):
                continue
            if b.state in AWAITING_RELEASE:
                out.extend(self.release(b.id))
            elif b.state == BroadcastState.DISPATCHING:
                out.extend(Deliver(p) for p in self._open_plans(b.id, resumed=True))
                if len(b.dispatches) < b.waves:
                    out.extend(self.release(b.id))
            elif b.state == BroadcastState.CANCELLED and self._open_plans(b.id):
                out.append(Cancel(b.id, self._open_plans(b.id)))
        return out

    def knows_dispatch(self, dispatch_id: object) -> bool:
        """Whether the log holds this dispatch (read from the loop thread: one dict lookup)."""
        try:
            return isinstance(self.aggs.get(UUID(str(dispatch_id))), Dispatch)
        except ValueError:
            return False

    def of_type(self, kind: type[Any]) -> list[Any]:
        """Folded aggregates of one type."""
        return [a for a in self.aggs.values() if isinstance(a, kind)]

    def _open_plans(self, broadcast_id: UUID, resumed: bool = False) -> list[Plan]:
        b = self.aggs.get(broadcast_id)
        if not isinstance(b, Broadcast):
            return []
        plans = []
        for did in b.dispatches:
            d = self.aggs.get(did)
            if isinstance(d, Dispatch) and not d.closed:
                plans.append(self._plan(b, d, resumed=resumed))
        return plans

    # -- releasing broadcasts -------------------------------------------------------------------------------------

    def release(self, broadcast_id: UUID, attempt: int = 1) -> list[Reaction]:
        """Open the next dispatch wave of an approved broadcast when its time has come; otherwise schedule it and arm
        a timer. Expired broadcasts are marked expired and never sent. After a wave opens, the next one is armed."""
        b = self.app.broadcast(broadcast_id)
        if not self.mine(b):
            return []  # its slot went to another worker meanwhile (a timer armed before the handover)
        now = self.clock()
        between = b.state == BroadcastState.DISPATCHING and len(b.dispatches) < b.waves
        if (b.state not in AWAITING_RELEASE and not between) or not b.is_approved:
            return []
        if between and now >= b.expires_at:
            return []
        if b.expire(now=now):
            self._save(b)
            log.info("dispatch.expired_before_release", broadcast_id=str(b.id))
            return []
        at = self.next_wave_at(b, now)
        if at is None:
            return []
        if at > now:
            if b.state == BroadcastState.APPROVED:
                b.schedule([at])
                self._save(b)
            return [Arm(b.id, at)]
        if "speaker" in b.channels:  # the voice starts in the render process while the targets are resolved
            self.content.prepare(b, speakers=True, resolutions=())
        targets = self.resolve(b)
        # The first item's content is made and recorded with the opening, before anything is published.
        parts = self._item(b, seq=1, targets=targets.values(), now=now)
        for render in parts.renders:
            b.record_render(**render)
        for failure in parts.failures:
            b.record_render_failure(**failure)
        b.open_dispatch(now=now)
        d = Dispatch.open(
            broadcast_id=b.id,
            wave=len(b.dispatches),
            priority=b.priority,
            targets=sorted(targets),
            expires_at=b.expires_at,
            drill=b.drill,
        )
        d.send_item(parts.item)
        if not self._save(b, d):
            # A concurrent write (the render worker recording audio, say) beat the opening: again on what is stored
            # now (the item's files are remembered, so that is cheap); another dispatcher's opening ends it there.
            return self.release(broadcast_id, attempt + 1) if attempt < 3 else []
        self.aggs[d.id] = d
        self.aggs[b.id] = b
        log.info("dispatch.opened", broadcast_id=str(b.id), dispatch_id=str(d.id), wave=d.wave, targets=len(targets))
        reactions: list[Reaction] = [Deliver(self._plan(b, d))]
        if len(b.dispatches) < b.waves:
            reactions.extend(self.release(b.id))
        return reactions

    def _item(self, b: Broadcast, *, seq: int, targets: Iterable[Target], now: datetime) -> ItemParts:
        targets = list(targets)
        return self.content.make(
            b,
            seq=seq,
            speakers=any(t.cls == proto.SPEAKER for t in targets),
            resolutions={t.display for t in targets if t.display},
            at=now,
        )

    def next_wave_at(self, b: Broadcast, now: datetime) -> datetime | None:
        """When the broadcast's next wave goes out (None: it has none left): its scheduled time in the first open slot
        outside quiet hours of its wards, and for a `priority` item waiting for a slot, after the items its wards'
        explicit order puts first."""
        at = self.programme.wave_time(
            priority=b.priority, wards=b.scope, now=now, times=b.schedule_at, wave=len(b.dispatches) + 1
        )
        if at is not None and at > now and b.priority == Priority.PRIORITY:
            at += self.programme.order_gap(b.scope, str(b.id))
        return at

    # -- recurring programmes -------------------------------------------------------------------------------------

    def materialise(self) -> int:
        """Make the broadcasts of recurring programmes whose next time is near (runtime/dispatch/programmes.py);
        returns how many were made. Their approvals come back through the log and are released like any other."""
        made = 0
        for p in self.of_type(RecurringProgramme):
            for at, b in occurrences_due(self.app, p, now=self.clock(), refused=self._refused):
                p.occur(at=at, broadcast_id=b.id)
                if not self._save(p, b):
                    break
                made += 1
                log.info("programme.occurrence", programme_id=str(p.id), broadcast_id=str(b.id), at=at.isoformat())
        return made

    def _save(self, *aggs: Aggregate) -> bool:
        try:
            self.app.save_changes(*aggs)
            return True
        except (ConcurrencyConflict, DuplicateRecord) as e:
            log.warning("dispatch.write_conflict", error=str(e))
            for agg in aggs:
                self.aggs.pop(agg.id, None)
                if agg.id in self.app.repository:
                    self.aggs[agg.id] = self.app.repository.get(agg.id)
            return False

    def ancestors(self, e: Endpoint, now: datetime | None = None) -> list[str]:
        """Area codes an endpoint belongs to on today's tree, nearest first (group, ward, then district and city,
        or province); see `_area_chain`."""
        ward, group = e.placement_at(now or self.clock())
        return self._area_chain(group or ward)

    def resolve(self, b: Broadcast) -> dict[str, Target]:
        """Commandable endpoints reached by the broadcast's target areas and endpoints on its channels."""
        kinds = {k for ch in b.channels for k in proto.KINDS_OF_CHANNEL.get(ch, ())}
        areas, codes = self.target_areas(b), set(b.target_endpoints)
        out, now = {}, self.clock()
        for e in self.of_type(Endpoint):
            if e.kind in kinds and e.commandable and (e.code in codes or areas.intersection(self.ancestors(e, now))):
                out[e.code] = _target(e, now)
        return out

    def _plan(self, b: Broadcast, d: Dispatch, resumed: bool = False) -> Plan:
        endpoints = {e.code: e for e in self.of_type(Endpoint)}
        targets: dict[str, Target] = {}
        now = self.clock()
        for code in d.targets:
            e = endpoints.get(code)
            if e is not None and e.kind in proto.CLASS_OF_KIND:
                targets[code] = _target(e, now)
        areas = self.target_areas(b)
        top = [a for a in sorted(areas) if not areas.intersection(self._area_chain(a)[1:])]
        chains = {code: self.ancestors(endpoints[code], now) for code in targets}
        direct = [code for code in targets if not areas.intersection(chains[code])]
        groups = [
            self.topics.area(cls, a)
            for a in top
            for cls in sorted({t.cls for c, t in targets.items() if a in chains[c]})
        ]
        approved = self.approved_at.get(b.id, d.created_on)
        if d.wave > 1:  # a later wave is measured from its own opening (at its time)
            reference = d.created_on
        else:
            reference = max(approved, min(b.slots[0], d.created_on)) if b.slots else approved
        item = d.current_item
        if item is None:  # opened before items were recorded: fix its content now, before it is sent again
            item = self._item(b, seq=d.next_seq, targets=targets.values(), now=self.clock()).item
            d.send_item(item)
            self._save(d)
        commands, duration = play_commands(b, d, item, targets.values(), self.audio_url, self.board_url)
        return Plan(
            dispatch_id=str(d.id),
            broadcast_id=str(b.id),
            partition=partition_key(b.scope),
            priority=b.priority,
            rank=Priority(b.priority).rank,
            expires_at=b.expires_at,
            reference_at=reference,
            targets=targets,
            group_topics=groups,
            direct=sorted(direct),
            commands=commands,
            seq=item["seq"],
            accepted={seq: item_hashes(i) for seq, i in d.items.items()},
            states={k: v["state"] for k, v in d.states.items()},
            first_at=dict(self.first_at.get(d.id, {})),
            retries=d.retries,
            resumed=resumed,
            play_s=duration * b.repeats,
        )

    def target_areas(self, b: Broadcast) -> set[str]:
        """The broadcast's target areas on the tree in force now. Its codes name the units that held them when they
        were recorded (drafted or revised): one whose unit has changed since (recoded, divided, merged) stands for
        the codes that cover its ground today, and a code reused since never reaches the unit that took it."""
        today = self._tree_of_today()
        # (an event's timestamp is the wall clock's: never later than the model's now, whatever the clock says)
        said_at = min(self._targets_at.get(b.id, b.created_on), self.clock())
        out: set[str] = set()
        for code in b.target_areas:
            then = self._registry.unit_at(code, said_at)
            if then is not None and then is self._registry.unit_at(code, today):
                out.add(code)
                continue
            try:
                out.update(self._registry.resolve(code, said_at=said_at, now=today).codes)
            except UnknownArea:
                log.warning("dispatch.target_area_gone", broadcast_id=str(b.id), area=code)
        return out

    def _tree_of_today(self) -> datetime:
        """Read the area tree in force today, once a day and again after an area event; returns the first instant
        of today (changes take effect at 00:00 Vietnam time, so that tree holds all day)."""
        day = self.clock().astimezone(VIETNAM_TZ).date().isoformat()
        if day != self._chains_day:
            self._chains.clear()
            self._chains_day = day
            self._registry = AreaRegistry(self.of_type(Area))
            self._parents = self._registry.at(day_start(day)).parents
        return day_start(day)

    def _area_chain(self, code: str) -> list[str]:
        """`code` and the codes above it on the tree in force today, as `_tree_of_today` last read it (`resolve` and
        `_plan` read it first, once per call rather than once per endpoint). A code reused by a later unit means
        that unit from its first day: the walk never follows the code's first holder."""
        chain = self._chains.get(code)
        if chain is None:  # a release walks 10,000 endpoints up a few hundred areas: walk each area once
            chain = []
            current: str | None = code
            while current is not None and current not in chain and len(chain) < 16:
                chain.append(current)
                current = self._parents.get(current)
            self._chains[code] = chain
        return chain

    # -- recording what devices said -----------------------------------------------------------------------------

    def record_acks(self, by_dispatch: dict[str, list[Ack]]) -> tuple[int, set[str]]:
        """Record one batch: one AcksRecorded per dispatch, all in one transaction. Returns the acks refused and the
        dispatches whose acks were not written (another writer changed one first: the batch is not recorded, and
        the caller must not count those acks as known; the devices are asked again and their re-acks recorded)."""
        changed, refused = [], 0
        for did, acks in by_dispatch.items():
            d = self.aggs.get(UUID(did))
            if not isinstance(d, Dispatch) or d.closed:
                refused += len(acks)
                continue
            refused += len(d.record_acks(acks))
            changed.append(d)
        if changed and not self._save(*changed):
            return sum(len(a) for a in by_dispatch.values()), {str(d.id) for d in changed}
        for d in changed:
            note_first_acks(self.first_at.setdefault(d.id, {}), by_dispatch[str(d.id)])
        return refused, set()

    def record_statuses(self, changes: dict[str, tuple[str, str]]) -> list[str]:
        """Turn status messages into Endpoint transitions (only real changes are events); one transaction."""
        changed = []
        now = self.clock()
        for code, (state, detail) in changes.items():
            e = self.aggs.get(_endpoint_id(code))
            if not isinstance(e, Endpoint) or e.decommissioned or not self.owns(e.placement_at(now)[0] or code):
                continue  # (another worker records the endpoints of the wards it holds)
            if (state == "online" and e.came_online()) or (state == "offline" and e.went_offline(detail or "offline")):
                changed.append(e)
            elif state == "fault" and e.condition == "good":
                e.report_fault(detail or "unspecified", severity="degraded", by=f"device:{code}")
                changed.append(e)
        if changed and not self._save(*changed):
            return []
        return [e.code for e in changed]

    def record_retries(self, dispatch_id: str, endpoints: list[str]) -> None:
        """One RetriesSent event for a round of resends."""
        d = self.aggs.get(UUID(dispatch_id))
        if isinstance(d, Dispatch) and not d.closed and endpoints:
            d.record_retries(endpoints)
            self._save(d)

    def close(self, dispatch_id: str, summary: DispatchSummary, verdict: BudgetVerdict | None = None) -> bool:
        """Close the dispatch with its summary and its latency-budget verdict; complete the broadcast when its last
        wave closes, or mark it scheduled again when another wave is still to come."""
        d = self.aggs.get(UUID(dispatch_id))
        if not isinstance(d, Dispatch) or d.closed:
            return False
        d.close(summary)
        if verdict is not None:
            d.record_verdict(verdict)
        b = self.app.broadcast(d.broadcast_id)
        others_open = any(
            isinstance(x := self.aggs.get(o), Dispatch) and not x.closed and o != d.id for o in b.dispatches
        )
        if (
            b.state == BroadcastState.DISPATCHING
            and not others_open
            and summary.get("outcome") != DispatchOutcome.CANCELLED
        ):
            now = self.clock()
            at = self.next_wave_at(b, now) if len(b.dispatches) < b.waves and now < b.expires_at else None
            if at is not None:
                b.schedule([max(at, now)])
            else:
                b.complete(summary)
            return self._save(d, b)
        return self._save(d)


def _target(e: Endpoint, now: datetime) -> Target:
    """An endpoint as a dispatch target: its class, its ward now, whether it is on 3G/4G, and a board's
    resolution."""
    cls = proto.CLASS_OF_KIND[e.kind]
    display = board_resolution(e.technology, e.capabilities) if cls == proto.BOARD else None
    return Target(e.code, cls, e.placement_at(now)[0], "4g" in e.technology or "3g" in e.technology, display)


def temporary_assets() -> Path:
    """Where a dispatcher built without an asset directory keeps the files it makes (tests, benchmarks): nothing
    serves them, but every speaker command still carries a real file and its hash."""
    path = Path(tempfile.mkdtemp(prefix="keng-assets-"))
    log.warning("dispatch.temporary_assets", path=str(path))
    return path
