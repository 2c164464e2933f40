"""A broadcast's revision history for the console: each of its events with who and when, and for each revision what
changed, field by field, against the content before it (text word by word, lists item by item).

Pure: it reads the broadcast's own events (Drafted carries the first content, each Revised the whole new content) and
formats values through the caller's `describe`, so that it knows nothing of the store or of HTTP. The word diff uses
difflib (the standard library's sequence matcher); nothing else here is more than bookkeeping.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# The content fields a revision may change, in the order a reader scans them, with their Vietnamese names.
FIELDS: tuple[tuple[str, str], ...] = (
    ("title", "Tiêu đề"),
    ("text", "Nội dung"),
    ("priority", "Mức độ"),
    ("target_areas", "Địa bàn nhận"),
    ("target_endpoints", "Thiết bị nhận"),
    ("channels", "Kênh phát"),
    ("schedule_at", "Lịch phát"),
    ("repeats", "Số lần lặp"),
    ("expires_at", "Hết hạn"),
    ("drill", "Diễn tập"),
    ("audio", "Âm thanh ghi sẵn"),
)
WORDY = frozenset({"title", "text"})
EVENT_LABELS = {
    "Drafted": "Soạn bản tin",
    "Revised": "Sửa bản tin",
    "SubmittedForApproval": "Gửi duyệt",
    "Approved": "Duyệt",
    "AutoApproved": "Tự động duyệt theo lệnh thường trực",
    "Ratified": "Xác nhận phê duyệt tự động",
    "Retracted": "Rút lại phê duyệt tự động",
    "Rejected": "Từ chối",
    "Scheduled": "Xếp lịch phát",
    "DispatchOpened": "Bắt đầu phát",
    "Completed": "Hoàn thành",
    "Cancelled": "Hủy",
    "Expired": "Hết hạn",
    "Rendered": "Tạo nội dung phát",
    "RenderFailed": "Tạo nội dung phát bị lỗi",
    "RenderClaimed": "Nhận việc tạo âm thanh",
}
_TOKENS = re.compile(r"\s+|[^\s]+")

Segment = tuple[str, str]  # ("same" | "del" | "ins", text)


def word_diff(before: str, after: str) -> list[Segment]:
    """`before` -> `after` as segments of unchanged, deleted and inserted words (whitespace kept as it was); changed
    words separated only by spaces read as one deleted phrase and one inserted phrase."""
    a, b = _TOKENS.findall(before), _TOKENS.findall(after)
    codes = difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
    out: list[Segment] = []
    gone: list[str] = []
    came: list[str] = []
    for index, (op, i1, i2, j1, j2) in enumerate(codes):
        if op == "equal":
            pending = bool(gone or came)
            if pending and index + 1 < len(codes) and all(t.isspace() for t in a[i1:i2]):
                gone += a[i1:i2]
                came += b[j1:j2]
                continue
            _flush(out, gone, came)
            _add(out, "same", "".join(a[i1:i2]))
        else:
            gone += a[i1:i2]
            came += b[j1:j2]
    _flush(out, gone, came)
    return out


def _flush(out: list[Segment], gone: list[str], came: list[str]) -> None:
    _add(out, "del", "".join(gone))
    _add(out, "ins", "".join(came))
    gone.clear()
    came.clear()


def _add(out: list[Segment], op: str, text: str) -> None:
    if not text:
        return
    if out and out[-1][0] == op:
        out[-1] = (op, out[-1][1] + text)
    else:
        out.append((op, text))


def list_diff(before: Iterable[str], after: Iterable[str]) -> list[Segment]:
    """Items kept, removed and added (in the new order, removed ones where they were)."""
    old, new = list(before), list(after)
    out: list[Segment] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if op == "equal":
            out += [("same", x) for x in old[i1:i2]]
            continue
        if op in ("delete", "replace"):
            out += [("del", x) for x in old[i1:i2]]
        if op in ("insert", "replace"):
            out += [("ins", x) for x in new[j1:j2]]
    return out


@dataclass(frozen=True)
class Change:
    """One field of a revision: its name, how it reads as segments, and whether it is a list (shown item by item)."""

    field: str
    label: str
    segments: list[Segment]
    listed: bool = False


@dataclass
class Entry:
    """One event of the broadcast's history."""

    name: str
    label: str
    at: datetime
    actor: str | None
    detail: str = ""
    revision: int | None = None
    changes: list[Change] = field(default_factory=list)


Describe = Callable[[str, Any], str]  # (field, one value or one list item) -> how it reads


def changes(before: dict[str, Any], after: dict[str, Any], describe: Describe) -> list[Change]:
    """What differs between two contents, field by field."""
    out = []
    for name, label in FIELDS:
        old, new = before.get(name), after.get(name)
        if _same(old, new):
            continue
        if name in WORDY:
            out.append(Change(name, label, word_diff(str(old or ""), str(new or ""))))
        elif isinstance(old, list | tuple) or isinstance(new, list | tuple):
            items = list_diff([describe(name, x) for x in old or ()], [describe(name, x) for x in new or ()])
            out.append(Change(name, label, items, listed=True))
        else:
            out.append(Change(name, label, [("del", describe(name, old)), ("ins", describe(name, new))]))
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return list(a) == list(b)
    return bool(a == b)


def history(events: Iterable[Any], describe: Describe, *, until: datetime | None = None) -> list[Entry]:
    """The broadcast's events (oldest first, up to `until` when given) as history entries; each revision carries
    its changes against the content before it."""
    out: list[Entry] = []
    content: dict[str, Any] = {}
    revision = 0
    for event in events:
        if until is not None and event.timestamp > until:
            break
        name = type(event).__qualname__.rpartition(".")[2]
        data = vars(event)
        entry = Entry(name, EVENT_LABELS.get(name, name), event.timestamp, data.get("by"))
        if name == "Drafted":
            content = {k: data.get(k) for k, _ in FIELDS}
            entry.revision = 0
        elif name == "Revised":
            revision += 1
            new = {k: data.get(k) for k, _ in FIELDS}
            entry.changes, entry.revision, content = changes(content, new, describe), revision, new
            entry.label = f"Sửa bản tin (lần {revision})"
        elif name in ("Approved", "Ratified"):
            entry.detail = f"bản sửa lần {data.get('revision')}" if data.get("revision") else "bản đầu tiên"
        elif name == "AutoApproved":
            entry.detail = f"theo lệnh thường trực «{data.get('rule')}»"
        elif name in ("Rejected", "Cancelled", "Retracted"):
            entry.detail = f"Lý do: {data.get('reason')}"
        elif name == "DispatchOpened":
            entry.detail = f"đợt {data.get('wave')}"
        elif name in ("Rendered", "RenderFailed"):
            entry.detail = describe("channel", data.get("channel")) + (
                f" – {data.get('reason')}" if name == "RenderFailed" else f" ({data.get('engine')})"
            )
        elif name == "RenderClaimed":
            entry.detail = f"tiến trình {data.get('worker')}"
        elif name == "Scheduled":
            entry.detail = ", ".join(describe("schedule_at", s) for s in data.get("slots") or ())
        out.append(entry)
    return out
