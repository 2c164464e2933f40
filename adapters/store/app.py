"""The keng eventsourcing Application: the unit of work over the aggregates, persisted atomically.

It loads aggregates, looks up areas, endpoints and scopes, folds the global log, and saves what a use case changed
(services/ hold the use cases). A uniqueness violation from the store becomes `DuplicateRecord` (on creation) or
`ConcurrencyConflict` (on update), and nothing is written. It carries the clock and the content limits the composition
root chose, so every use case reads the same time and bounds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, DomainEventProtocol
from eventsourcing.persistence import IntegrityError, Mapper, Notification, Transcoder

from keng.adapters.store.errors import ConcurrencyConflict, DuplicateRecord, NotFound
from keng.adapters.store.topics import StableTopicMapper, register_import_root, stored_topic
from keng.adapters.store.transcoder import DateAsISO, OrjsonTranscoder
from keng.domain.actor import Actor
from keng.domain.area import AREA_EVENTS, Area
from keng.domain.area_registry import AreaRegistry, AreaView, Structure
from keng.domain.authority import Visibility, visibility
from keng.domain.broadcast import Broadcast
from keng.domain.content import DEFAULT_LIMITS, ContentLimits, build_content
from keng.domain.endpoint import Endpoint
from keng.domain.errors import UnknownArea
from keng.domain.ids import area_id, endpoint_id, staff_id
from keng.domain.staff import Staff
from keng.domain.values import AreaLevel

A = TypeVar("A", bound=Aggregate)
MAX_POSITION = 2**62  # bound on a log position a caller asks for: past any log, and `+ 1` fits a signed 64-bit integer
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The default clock."""
    return datetime.now(UTC)


class Keng(Application[UUID]):
    """All of keng's aggregates in one event store with one global order (the audit log)."""

    name = "keng"

    def __init__(
        self, env: dict[str, str] | None = None, clock: Clock = utc_now, limits: ContentLimits = DEFAULT_LIMITS
    ) -> None:
        register_import_root()  # stored topics name the packages without the keng. root
        super().__init__(env)
        self.clock = clock
        self.limits = limits
        self._registry: tuple[int, AreaRegistry] | None = None

    def construct_mapper(self) -> Mapper[UUID]:
        """The library's mapper, writing topics without the `keng.` import root (adapters/store/topics.py)."""
        return self.factory.mapper(transcoder=self.construct_transcoder(), mapper_class=StableTopicMapper)

    def construct_transcoder(self) -> Transcoder:
        from eventsourcing.persistence import DatetimeAsISO, DecimalAsStr, UUIDAsHex

        transcoder = OrjsonTranscoder()
        for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO(), DateAsISO()):
            transcoder.register(transcoding)
        return transcoder

    # -- loading and saving -------------------------------------------------------------------------------------------

    def load(self, kind: type[A], aggregate_id: UUID, what: str) -> A:
        """Load an aggregate of a given type or raise NotFound naming `what`."""
        try:
            agg: Aggregate = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            raise NotFound(f"{what} not found") from None
        if not isinstance(agg, kind):
            raise NotFound(f"{what} not found")
        return agg

    def exists(self, aggregate_id: UUID) -> bool:
        """True if any aggregate has this id."""
        return aggregate_id in self.repository

    @contextmanager
    def _conflicts(self, creating: str | None = None) -> Iterator[None]:
        try:
            yield
        except IntegrityError as e:
            if creating:
                raise DuplicateRecord(f"{creating} already exists; nothing was written") from e
            raise ConcurrencyConflict(
                "the record was changed by someone else since it was read; nothing was written, try again"
            ) from e

    def save_new(self, *aggregates: Aggregate | DomainEventProtocol[UUID], what: str) -> None:
        """Save newly created aggregates in one transaction; any duplicate refuses them all."""
        with self._conflicts(creating=what):
            self.save(*aggregates)

    def save_changes(self, *aggregates: Aggregate) -> None:
        """Save changes to loaded aggregates in one transaction (optimistic concurrency)."""
        with self._conflicts():
            self.save(*aggregates)

    # -- staff ------------------------------------------------------------------------------------------------------

    def staff(self, handle: str) -> Staff:
        """The staff member with this handle."""
        return self.load(Staff, staff_id(handle), f"staff member {handle!r}")

    def visibility_of(self, member: Staff, structure: Structure | None = None) -> Visibility:
        """What a staff member may read (domain/authority.py), on the area tree in force now; `structure` is the
        caller's cached tree of now, if any."""
        tree = structure if structure is not None else self.area_registry().in_force(self.clock())
        return visibility(wards=member.wards, roles=member.roles, parents=tree.parents)

    # -- areas and endpoints ---------------------------------------------------------------------------------------

    def area(self, code: str, at: datetime | None = None) -> Area:
        """The unit that holds this code now (or at the instant `at`); UnknownArea, or AreaEnded naming its
        successors when the code's unit had ended by then."""
        when = at or self.clock()
        try:  # the common case: the code's first holder, still in force
            node = self.load(Area, area_id(code), f"area {code!r}")
            if node.ending is None and len(node.periods) == 1 and node.period_at(when) is not None:
                return node
        except NotFound:
            pass
        registry = self.area_registry()
        found = registry.unit_at(code, when)
        if found is None:
            registry.resolve(code, said_at=when, now=when)  # raises the precise UnknownArea / AreaEnded
            raise UnknownArea(f"rule {UnknownArea.rule}: no area with code {code!r} is registered")
        return self.load(Area, found.id, f"area {code!r}")  # the registry's aggregates are shared: read-only

    def area_of_level(self, code: str, level: AreaLevel) -> Area:
        """The unit with this code now if it is of this level (a ward, say), or UnknownArea."""
        now = self.clock()
        node = self.area(code, now)
        current = node.period_at(now)
        node_level = current.level if current else node.level
        if node_level != level.value:
            raise UnknownArea(f"rule {UnknownArea.rule}: {code!r} is a {node_level}, not a {level.value}")
        return node

    def area_registry(self) -> AreaRegistry:
        """Every unit ever recorded, answering by instant (domain/area_registry.py); rebuilt only when the log has
        grown since the last call (a district file asks once per row). Its aggregates are shared: read them only;
        load a unit (`area`) to change it."""
        position = self.max_position()
        cached = self._registry
        if cached is None or cached[0] != position:
            cached = self._registry = (position, AreaRegistry(self.areas()))
        return cached[1]

    def endpoint(self, code: str) -> Endpoint:
        """The endpoint with this inventory code."""
        return self.load(Endpoint, endpoint_id(code), f"endpoint {code!r}")

    def scope_of(
        self, areas: Sequence[str], endpoints: Sequence[str], index: Mapping[str, AreaView] | None = None
    ) -> list[str]:
        """The ward codes (or district/city codes, for wider targets) that a set of targets covers, on the tree in
        force now. `index` is an optional in-memory map of the units in force now by code (the hot path's cache);
        other codes are looked up in the store (UnknownArea, or AreaEnded naming the successors of an ended unit)."""
        scope: set[str] = set()
        now: datetime | None = None
        for code in areas:
            node = index.get(code) if index is not None else None
            if node is not None:
                level, parent = node.level, node.parent
            else:
                now = now or self.clock()
                period = self.area(code, now).period_at(now)
                assert period is not None  # area() answers with the unit holding the code at that instant
                level, parent = period.level, period.parent
            scope.add(parent if level == AreaLevel.GROUP.value and parent else code)
        for code in endpoints:
            try:
                scope.add(self.endpoint(code).ward)
            except NotFound:
                raise UnknownArea(f"rule {UnknownArea.rule}: no endpoint with code {code!r} is registered") from None
        return sorted(scope)

    # -- broadcasts ------------------------------------------------------------------------------------------------

    def broadcast(self, broadcast_id: UUID) -> Broadcast:
        """The broadcast with this id."""
        return self.load(Broadcast, broadcast_id, f"broadcast {broadcast_id}")

    def prepare_broadcast(
        self,
        actor: Actor,
        *,
        target_areas: Sequence[str] = (),
        target_endpoints: Sequence[str] = (),
        source_kind: str = "operator",
        source_ref: str | None = None,
        area_index: Mapping[str, AreaView] | None = None,
        **content: Any,
    ) -> Broadcast:
        """A drafted (unsaved) broadcast, for callers that save it together with other records."""
        built = build_content(
            target_areas=target_areas,
            target_endpoints=target_endpoints,
            scope=self.scope_of(target_areas, target_endpoints, area_index),
            now=self.clock(),
            limits=self.limits,
            **content,
        )
        return Broadcast.draft(built, by=actor, source_kind=source_kind, source_ref=source_ref)

    # -- the global log -------------------------------------------------------------------------------------------

    def max_position(self) -> int:
        """Position of the newest event in the global order (0 when empty)."""
        return self.recorder.max_notification_id() or 0

    def read_events(self, since: int = 0, limit: int | None = None) -> Iterator[tuple[int, DomainEventProtocol[Any]]]:
        """Events after position `since`, in global order, decoded, with their positions."""
        start, remaining, page = since + 1, limit, 1000
        while remaining is None or remaining > 0:
            batch = self.recorder.select_notifications(start=start, limit=min(page, remaining or page))
            if not batch:
                return
            for n in batch:
                yield n.id, self.mapper.to_domain_event(n)
            start = batch[-1].id + 1
            if remaining is not None:
                remaining -= len(batch)

    def aggregates_of(self, *event_classes: type) -> dict[UUID, Any]:
        """Current states folded from only these event classes (a topic-filtered read, not the whole log)."""
        found: dict[UUID, Any] = {}
        self.fold_topics(event_classes, found, since=0)
        return found

    def fold_topics(
        self, event_classes: Sequence[type], into: dict[UUID, Any], *, since: int, touched: set[UUID] | None = None
    ) -> int:
        """Fold the events of these classes recorded after position `since` into `into` (states by id), noting the ids
        they changed in `touched` when given; returns the position read up to, so that the next call reads only what
        is new."""
        top = self.max_position()
        for n in self.notifications_of(event_classes, since=since, upto=top):
            event: Any = self.mapper.to_domain_event(n)
            into[event.originator_id] = event.mutate(into.get(event.originator_id))
            if touched is not None:
                touched.add(event.originator_id)
        return max(top, since)

    def notifications_of(
        self, event_classes: Sequence[type], *, since: int, upto: int, page: int = 1000
    ) -> Iterator[Notification]:
        """The stored notifications of these event classes after position `since` and up to `upto` (a position read
        with `max_position()`), in order, undecoded. A follower then carries on from `upto`, not from its last match:
        reading on from the last match would scan the whole log since then on every call, for topics that seldom
        come (a delivery report, a push), which grows with the log."""
        topics = [stored_topic(c) for c in event_classes]
        start = since + 1
        while start <= upto:
            batch = self.recorder.select_notifications(start=start, limit=page, stop=upto, topics=topics)
            yield from batch
            if len(batch) < page:
                return
            start = batch[-1].id + 1

    def areas(self) -> list[Area]:
        """Every area unit ever recorded, current or ended, with its dated history."""
        return list(self.aggregates_of(*AREA_EVENTS).values())
