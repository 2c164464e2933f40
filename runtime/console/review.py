"""What the broadcast page and the approval queue know about one broadcast and the person looking at it: which
commands the person may give now, how the broadcast's values read in Vietnamese, and its live delivery figures.

"May give" is asked of the domain itself: each command is tried on a copy of the broadcast that is never saved, so the
console shows exactly the buttons the domain would accept (role, area scope, four-eyes, state, expiry, an emergency
on air) and never restates a rule.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from keng.domain.area_registry import AreaView
from keng.domain.broadcast import Broadcast
from keng.domain.budgets import budget_ms
from keng.domain.errors import DomainError
from keng.domain.staff import Staff
from keng.runtime.console import labels
from keng.runtime.console.history import Entry, history

FOUR_EYES = "Bạn đã soạn/sửa bản tin này nên không thể tự duyệt (nguyên tắc bốn mắt)"
TRIAL_REASON = "thử quyền"  # the reason a trial reject or cancel gives; never saved
SOURCES = {
    "operator": "Cán bộ soạn trên hệ thống",
    "city-source": "Hệ thống thông tin nguồn",
    "cap": "Cảnh báo CAP",
    "programme": "Chương trình phát định kỳ",
}


@dataclass(frozen=True)
class Command:
    """A command of the broadcast page: its button, its notice once done, and whether it needs a reason."""

    button: str
    done: str
    reason: bool = False
    danger: bool = False


COMMANDS: dict[str, Command] = {
    "submit": Command("Gửi duyệt", "Đã gửi bản tin đi duyệt."),
    "approve": Command("Duyệt bản tin", "Đã duyệt bản tin."),
    "ratify": Command("Xác nhận phê duyệt tự động", "Đã xác nhận phê duyệt theo lệnh thường trực."),
    "reject": Command("Từ chối bản tin", "Đã từ chối bản tin.", reason=True, danger=True),
    "cancel": Command("Hủy bản tin", "Đã hủy bản tin.", reason=True, danger=True),
    "retract": Command(
        "Rút lại phê duyệt tự động", "Đã rút lại phê duyệt theo lệnh thường trực.", reason=True, danger=True
    ),
}


def trial(b: Broadcast, command: Callable[[Broadcast], object]) -> DomainError | None:
    """What the domain says to `command` on a copy of `b` (never saved): None when it would accept it."""
    try:
        command(copy.deepcopy(b))
    except DomainError as e:
        return e
    return None


def refusals(b: Broadcast, staff: Staff, now: datetime) -> dict[str, DomainError | None]:
    """For each command of the page (and `revise`), the domain's refusal for this person now, or None."""
    content = b.content()
    tries: dict[str, Callable[[Broadcast], object]] = {
        "submit": lambda x: x.submit(by=staff),
        "approve": lambda x: x.approve(by=staff, now=now),
        "ratify": lambda x: x.ratify(by=staff),
        "reject": lambda x: x.reject(by=staff, reason=TRIAL_REASON),
        "cancel": lambda x: x.cancel(by=staff, reason=TRIAL_REASON),
        "retract": lambda x: x.retract(by=staff, reason=TRIAL_REASON),
        "revise": lambda x: x.revise(content, by=staff),
    }
    return {name: trial(b, fn) for name, fn in tries.items()}


def four_eyes(b: Broadcast, handle: str) -> bool:
    """True when the person wrote this submitted broadcast (drafted or revised it), so may not approve it."""
    return b.state == "submitted" and handle in b.authors


class Names:
    """How codes and handles read: areas by name (`areas`: the units in force at the instant the page shows), staff
    by name, values in Vietnamese."""

    def __init__(self, areas: Iterable[AreaView], staff: Iterable[Staff], tz: tzinfo) -> None:
        self.areas = {a.code: a for a in areas}
        self.staff = {s.handle: s.name for s in staff}
        self.tz = tz

    def area(self, code: str) -> str:
        found = self.areas.get(code)
        return f"{found.name} ({code})" if found else code

    def area_name(self, code: str) -> str:
        found = self.areas.get(code)
        return found.name if found else code

    def person(self, handle: str | None) -> str:
        if not handle:
            return "hệ thống"
        if handle.startswith("integration:"):
            return f"hệ thống nguồn «{handle.removeprefix('integration:')}»"
        name = self.staff.get(handle)
        return f"{name} ({handle})" if name else handle

    def source(self, kind: str, ref: str | None) -> str:
        text = labels.label(SOURCES, kind)
        return f"{text} (mã tham chiếu: {ref})" if ref else text

    def describe(self, field: str, value: Any) -> str:
        """One value (or one list item) of a content field as it reads on the page."""
        if value is None or value == "":
            return "không có"
        if field == "target_areas":
            return self.area(str(value))
        if field in ("channels", "channel"):
            return labels.label(labels.CHANNELS, value)
        if field == "priority":
            return labels.label(labels.PRIORITIES, value)
        if field in ("schedule_at", "expires_at"):
            return labels.vn_time(value, self.tz)
        if field == "drill":
            return "có" if value else "không"
        return str(value)

    def history(self, events: Iterable[Any], until: datetime | None) -> list[Entry]:
        return history(events, self.describe, until=until)


# -- live delivery ---------------------------------------------------------------------------------------------------

COUNTS = ("received", "playing", "played", "failed", "pending", "unreachable")


@dataclass(frozen=True)
class Tally:
    """Delivery figures of one area (or of all targets): counts, shares of the targeted, latency percentiles."""

    code: str
    name: str
    counts: Mapping[str, int]
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None

    @property
    def targeted(self) -> int:
        return int(self.counts.get("targeted", 0))

    def share(self, key: str) -> float:
        return self.counts.get(key, 0) / self.targeted if self.targeted else 0.0

    @property
    def done(self) -> bool:
        """Every targeted device has played."""
        return self.targeted > 0 and self.counts.get("played", 0) == self.targeted


@dataclass(frozen=True)
class Progress:
    """The live panel: the broadcast's state, all targets, per ward and per residential group, and the latency
    budget of its priority."""

    state: str
    priority: str
    overall: Tally | None
    wards: list[Tally]
    groups: list[Tally]
    failed_endpoints: list[str]
    budget_ms: int

    @property
    def within_budget(self) -> bool | None:
        """p99 latency within the priority's budget (None before any acknowledgement)."""
        if self.overall is None or self.overall.p99_ms is None:
            return None
        return self.overall.p99_ms <= self.budget_ms


def _tally(row: Mapping[str, Any], name: str) -> Tally:
    counts = {k: int(row.get(k, 0) or 0) for k in ("targeted", *COUNTS)}
    return Tally(str(row.get("code", "")), name, counts, row.get("p50_ms"), row.get("p90_ms"), row.get("p99_ms"))


def progress(b: Broadcast, report: Mapping[str, Any] | None, names: Names) -> Progress:
    """The live panel from `projections.queries.delivery` (None: the read models do not know the broadcast yet)."""
    areas = list(report["areas"]) if report else []
    overall = _tally(report["overall"], "Tất cả thiết bị") if report and report["overall"]["targeted"] else None
    return Progress(
        state=str(b.state),
        priority=str(b.priority),
        overall=overall,
        wards=[_tally(a, names.area_name(a["code"])) for a in areas if a["level"] == "ward"],
        groups=[_tally(a, names.area_name(a["code"])) for a in areas if a["level"] == "group"],
        failed_endpoints=list(report["failed_endpoints"]) if report else [],
        budget_ms=budget_ms(str(b.priority)),
    )
