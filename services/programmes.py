"""Programmes: a ward's slots, quiet hours and order of `priority` items (admins), recurring programmes (drafters set
them up, another approver approves), and what a broadcast waits for and how its waves went (readers).

Commands take the application and the acting staff member's handle; the domain (domain/ward_schedule.py,
domain/recurring.py) checks roles and scope. Reads of a broadcast's delivery and waiting follow the reader's scope
through `services.broadcasts.readable`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from keng.adapters.store.app import Keng
from keng.adapters.store.errors import NotFound
from keng.domain.broadcast import Broadcast
from keng.domain.dispatch import Dispatch
from keng.domain.ids import ward_schedule_id
from keng.domain.programme import ORDER_GAP, Programme, format_slots
from keng.domain.recurring import RecurringProgramme, parse_days
from keng.domain.values import AreaLevel, BroadcastState, Priority
from keng.domain.ward_schedule import WardSchedule

WARD_EVENTS = (WardSchedule.Set, WardSchedule.Changed, WardSchedule.Ordered)
PROGRAMME_EVENTS = (
    RecurringProgramme.Created,
    RecurringProgramme.Approved,
    RecurringProgramme.Occurred,
    RecurringProgramme.Ended,
)


def with_wards(app: Keng, base: Programme) -> Programme:
    """The installation's programme with every ward's own settings as recorded."""
    programme = base
    for ws in app.aggregates_of(*WARD_EVENTS).values():
        programme = ws.applied_to(programme)
    return programme


def set_ward(app: Keng, ward: str, *, by: str, base: Programme, slots: str | None, quiet: str | None) -> None:
    """Set a ward's slots and quiet hours; what is not given keeps the ward's current value (else the default)."""
    actor = app.staff(by)
    app.area_of_level(ward, AreaLevel.WARD)
    current = with_wards(app, base)
    slots = slots if slots is not None else ",".join(format_slots(current.slots(ward)))
    quiet = quiet if quiet is not None else (",".join(format_slots(current.quiet(ward))) or "none")
    sid = ward_schedule_id(ward)
    if app.exists(sid):
        ws = app.load(WardSchedule, sid, f"programme of ward {ward}")
        ws.change(slots=slots, quiet=quiet, by=actor)
        app.save_changes(ws)
    else:
        app.save_new(WardSchedule.set_up(ward=ward, slots=slots, quiet=quiet, by=actor), what=f"ward {ward}")


def order_ward(app: Keng, ward: str, order: list[str], *, by: str, base: Programme) -> None:
    """Set the explicit order of a ward's waiting `priority` items (broadcast ids)."""
    sid = ward_schedule_id(ward)
    if not app.exists(sid):
        set_ward(app, ward, by=by, base=base, slots=None, quiet=None)
    ws = app.load(WardSchedule, sid, f"programme of ward {ward}")
    ws.set_order(order, by=app.staff(by))
    app.save_changes(ws)


def ward_settings(app: Keng, base: Programme, wards: list[str]) -> list[dict[str, Any]]:
    """Slots, quiet hours and order of each ward, and whether they are the ward's own."""
    programme, own = with_wards(app, base), {ws.ward for ws in app.aggregates_of(*WARD_EVENTS).values()}
    return [
        {
            "ward": w,
            "own": w in own,
            "slots": format_slots(programme.slots(w)),
            "quiet": format_slots(programme.quiet(w)),
            "order": list(programme.order_by_ward.get(w, ())),
        }
        for w in wards
    ]


def create_programme(
    app: Keng,
    *,
    by: str,
    title: str,
    text: str,
    priority: str,
    wards: list[str],
    times: list[str],
    days: str | None,
    channels: list[str] | None,
) -> UUID:
    """Set up a recurring programme (it produces nothing until another person approves it)."""
    for w in wards:
        app.area_of_level(w, AreaLevel.WARD)
    p = RecurringProgramme.create(
        title=title,
        text=text,
        priority=priority,
        wards=wards,
        channels=channels or ["speaker"],
        times=times,
        weekdays=parse_days(days),
        starts_at=app.clock(),
        by=app.staff(by),
    )
    app.save_new(p, what="a recurring programme")
    return p.id


def programme(app: Keng, programme_id: UUID) -> RecurringProgramme:
    """One recurring programme."""
    return app.load(RecurringProgramme, programme_id, f"programme {programme_id}")


def approve_programme(app: Keng, programme_id: UUID, *, by: str) -> None:
    """Approve a recurring programme (never its author)."""
    p = programme(app, programme_id)
    p.approve(by=app.staff(by))
    app.save_changes(p)


def end_programme(app: Keng, programme_id: UUID, *, by: str, reason: str) -> None:
    """End a recurring programme."""
    p = programme(app, programme_id)
    p.end(by=app.staff(by), reason=reason)
    app.save_changes(p)


def programmes(app: Keng) -> list[RecurringProgramme]:
    """Every recurring programme."""
    return list(app.aggregates_of(*PROGRAMME_EVENTS).values())


def resolve_programme(app: Keng, ref: str) -> UUID:
    """A programme id, or the one whose id starts with `ref` (6 hex digits or more)."""
    try:
        return UUID(ref)
    except ValueError:
        pass
    prefix = ref.replace("-", "").lower()
    matches = [p.id for p in programmes(app) if len(prefix) >= 6 and p.id.hex.startswith(prefix)]
    if len(matches) != 1:
        raise NotFound(f"{len(matches)} programmes have ids starting with {ref!r}; give more digits")
    return matches[0]


# -- what a broadcast waits for, and how its waves went ---------------------------------------------------------------


def waiting(b: Broadcast, programme: Programme, now: datetime) -> dict[str, Any] | None:
    """Why the broadcast has not (all) gone out yet, and when its next wave goes; None when nothing waits."""
    if b.state in (BroadcastState.DRAFT, BroadcastState.SUBMITTED):
        return {"reason": "approval", "detail": f"waits for an approval of revision {b.revision}", "at": None}
    opened = len(b.dispatches)
    if b.state not in (BroadcastState.APPROVED, BroadcastState.SCHEDULED, BroadcastState.DISPATCHING):
        return None
    if opened >= b.waves:
        return None
    wave = opened + 1
    at = programme.wave_time(priority=b.priority, wards=b.scope, now=now, times=b.schedule_at, wave=wave)
    if at is None:
        return None
    gap = programme.order_gap(b.scope, str(b.id)) if at > now and b.priority == Priority.PRIORITY else None
    at = at + gap if gap else at
    wanted = b.schedule_at[wave - 1] if b.schedule_at else now
    wards = b.scope or [""]
    if b.priority == Priority.EMERGENCY:
        reason, detail = "scheduled", f"wave {wave} of {b.waves} repeats the emergency at its scheduled time"
    elif at <= max(now, wanted):
        reason, detail = "due", f"wave {wave} of {b.waves} goes out now"
    elif any(programme.next_open(w, max(now, wanted)) != programme.next_release(w, max(now, wanted)) for w in wards):
        reason = "quiet-hours"
        detail = f"wave {wave} of {b.waves}: quiet hours of {_describe(programme, wards, 'quiet')}; then the next slot"
    elif wanted > now and wanted == at:
        reason, detail = "scheduled", f"wave {wave} of {b.waves} waits for its scheduled time"
    else:
        reason = "slot"
        detail = f"wave {wave} of {b.waves} waits for the next programme slot ({_describe(programme, wards, 'slots')})"
    if gap:
        detail += f"; number {int(gap / ORDER_GAP) + 1} in the ward's order of priority items"
    return {"reason": reason, "detail": detail, "at": at, "wave": wave, "waves": b.waves}


def _describe(programme: Programme, wards: list[str], what: str) -> str:
    parts = []
    for w in wards:
        windows = programme.slots(w) if what == "slots" else programme.quiet(w)
        parts.append(f"{w or 'default'}: {', '.join(format_slots(windows)) or 'none'}")
    return "; ".join(parts)


def delivery(app: Keng, b: Broadcast) -> dict[str, Any]:
    """Each wave's dispatch: when it opened, its closing summary (counts, latency per priority) and its verdict
    against the latency budget, with totals over the waves."""
    waves: list[dict[str, Any]] = []
    breached: list[int] = []
    totals = {"targeted": 0, "received": 0, "played": 0, "failed": 0, "unreachable": 0}
    for did in b.dispatches:
        try:
            d = app.load(Dispatch, did, f"dispatch {did}")
        except NotFound:
            continue
        if d.verdict and d.verdict["verdict"] == "breached":
            breached.append(d.wave)
        waves.append(
            {
                "dispatch_id": d.id,
                "wave": d.wave,
                "opened_at": d.created_on,
                "targets": len(d.targets),
                "received": len(d.states),
                "closed": d.closed,
                "summary": dict(d.summary) or None,
                "verdict": dict(d.verdict) or None,
            }
        )
        summary: dict[str, Any] = dict(d.summary) if d.closed else {}
        for key in totals:
            totals[key] += int(summary.get(key) or 0)
    return {"waves": waves, "totals": totals, "breached_waves": breached}
