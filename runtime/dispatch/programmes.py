"""Occurrences of recurring programmes (domain/recurring.py), made by the dispatcher as their times draw near.

Each occurrence is a broadcast drafted in the programme author's name (so their authority is checked again every
time: an author who lost the drafter role or the wards makes no more occurrences) and approved under the programme.
Its id derives from the programme and the time, so two dispatchers, or one restarted, cannot make it twice: the
second write collides in the store. An occurrence missed by more than a minute (the dispatcher was down) is skipped.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog

from keng.adapters.store.app import Keng
from keng.adapters.store.errors import NotFound
from keng.domain.broadcast import Broadcast
from keng.domain.errors import DomainError
from keng.domain.recurring import OCCURRENCE_LIFETIME, RecurringProgramme
from keng.domain.values import SourceKind

LEAD = timedelta(minutes=10)  # made this long before its time, so that it is scheduled (and visible) ahead
GRACE = timedelta(minutes=1)
log = structlog.get_logger(__name__)


def occurrence_ref(p: RecurringProgramme, at: datetime) -> str:
    """The source reference of the broadcast made for one occurrence (its id derives from it)."""
    return f"{p.id}@{at.isoformat()}"


def occurrences_due(
    app: Keng, p: RecurringProgramme, *, now: datetime, refused: set[tuple[str, datetime]]
) -> list[tuple[datetime, Broadcast]]:
    """The programme's next occurrence as an unsaved, approved broadcast when its time is within `LEAD` of `now`.
    An occurrence the domain refuses (its author lost the role) is logged once and added to `refused`, not retried."""
    if not p.active:
        return []
    after = max(p.last_at or p.starts_at - timedelta(microseconds=1), now - GRACE)
    at = p.next_after(after)
    if at is None or at > now + LEAD or (str(p.id), at) in refused:
        return []
    try:
        b = app.prepare_broadcast(
            app.staff(p.created_by),
            target_areas=p.wards,
            title=p.title,
            text=p.text,
            priority=p.priority,
            channels=p.channels,
            schedule_at=[at],
            expires_at=at + OCCURRENCE_LIFETIME,
            source_kind=SourceKind.PROGRAMME.value,
            source_ref=occurrence_ref(p, at),
        )
        b.auto_approve(rule=f"programme {p.id} (approved by {p.approved_by})", now=now)
    except (DomainError, NotFound) as e:
        refused.add((str(p.id), at))
        log.warning("programme.occurrence_refused", programme_id=str(p.id), at=at.isoformat(), error=str(e))
        return []
    return [(at, b)]
