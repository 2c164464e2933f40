"""The compose form: what a person typed, kept as typed (to show the form again), turned into the operator API's
broadcast body and parsed by the very same code (adapters/city_source.py `parse_city_message`), so that a bulletin
composed in the console obeys exactly the rules of one sent to the API; and every refusal said in Vietnamese, naming
the field it concerns.

Times come from `datetime-local` fields, which carry no offset: they are read in the display time zone
(Asia/Ho_Chi_Minh by default) and sent on as aware times.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

import orjson

from keng.adapters.city_source import parse_city_message
from keng.adapters.payload import PayloadError
from keng.domain.broadcast import Broadcast
from keng.domain.content import MAX_REPEATS, MAX_TARGETS, MAX_TEXT, MAX_TITLE
from keng.domain.values import Channel, Priority

FIELDS_VI = {
    "title": "Tiêu đề",
    "text": "Nội dung",
    "priority": "Mức độ",
    "targets": "Địa bàn nhận tin",
    "channels": "Kênh phát",
    "schedule_at": "Thời điểm phát",
    "repeats": "Số lần phát",
    "expires_at": "Hết hạn lúc",
    "drill": "Diễn tập",
}
_PATHS = {"schedule/at": "schedule_at", "schedule/repeats": "repeats", "schedule": "schedule_at"}
LOCAL_FORMAT = "%Y-%m-%dT%H:%M"


class FormInvalid(ValueError):
    """The form cannot become a broadcast: `field` (a key of FIELDS_VI) and a Vietnamese message naming it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass
class ComposeForm:
    """The form's values, as the person typed them (strings), ready to be shown again."""

    title: str = ""
    text: str = ""
    priority: str = Priority.NORMAL.value
    areas: list[str] = field(default_factory=list)
    endpoints: list[str] = field(default_factory=list)
    channels: list[str] = field(default_factory=lambda: [c.value for c in Channel])
    schedule_at: str = ""
    repeats: str = ""
    expires_at: str = ""
    drill: bool = False
    action: str = "draft"

    @classmethod
    def of_post(cls, form: Mapping[str, Any]) -> ComposeForm:
        """The values of a posted form (a MultiDict); anything oversized is cut, never trusted."""

        def one(name: str, limit: int) -> str:
            value = form.get(name, "")
            return value[: limit + 1] if isinstance(value, str) else ""

        def many(name: str) -> list[str]:
            getall = getattr(form, "getall", None)
            values = getall(name, []) if getall is not None else []
            return [v[:64] for v in values if isinstance(v, str) and v][: MAX_TARGETS + 1]

        return cls(
            title=one("title", MAX_TITLE),
            text=one("text", MAX_TEXT),
            priority=one("priority", 20),
            areas=list(dict.fromkeys(many("areas"))),
            endpoints=list(dict.fromkeys(many("endpoints"))),
            channels=list(dict.fromkeys(many("channels"))),
            schedule_at=one("schedule_at", 40).strip(),
            repeats=one("repeats", 10).strip(),
            expires_at=one("expires_at", 40).strip(),
            drill=form.get("drill") in ("on", "1", "true"),
            action=one("action", 20),
        )

    @classmethod
    def of_broadcast(cls, b: Broadcast, tz: tzinfo) -> ComposeForm:
        """A broadcast's current content, as the form shows it."""
        schedule = list(b.schedule_at)
        return cls(
            title=b.title,
            text=b.text,
            priority=b.priority,
            areas=list(b.target_areas),
            endpoints=list(b.target_endpoints),
            channels=list(b.channels),
            schedule_at=local(schedule[0], tz) if schedule else "",
            repeats=str(b.repeats),
            expires_at=local(b.expires_at, tz) if b.expires_at else "",
            drill=bool(b.drill),
        )

    def body(self, tz: tzinfo) -> dict[str, Any]:
        """The operator API's broadcast body for these values (FormInvalid for what the API's body cannot say)."""
        if not self.channels:
            raise FormInvalid("channels", "Kênh phát: chọn ít nhất một kênh.")
        if not self.areas and not self.endpoints:
            raise FormInvalid("targets", "Địa bàn nhận tin: chọn ít nhất một khu vực.")
        body: dict[str, Any] = {
            "title": self.title,
            "text": self.text,
            "priority": self.priority,
            "targets": {"areas": self.areas, **({"endpoints": self.endpoints} if self.endpoints else {})},
            "channels": self.channels,
            "drill": self.drill,
        }
        schedule: dict[str, Any] = {}
        if self.schedule_at:
            schedule["at"] = [aware(self.schedule_at, tz, "schedule_at").isoformat()]
        if self.repeats:
            try:
                schedule["repeats"] = int(self.repeats)
            except ValueError:
                raise FormInvalid("repeats", f"Số lần phát: phải là một số từ 1 đến {MAX_REPEATS}.") from None
        if schedule:
            body["schedule"] = schedule
        if self.expires_at:
            body["expires_at"] = aware(self.expires_at, tz, "expires_at").isoformat()
        return body

    def fields(self, tz: tzinfo) -> dict[str, Any]:
        """Keyword arguments for drafting or revising, checked exactly as the API checks its body."""
        try:
            return parse_city_message(orjson.dumps(self.body(tz)))
        except PayloadError as e:
            raise payload_invalid(e) from None


def local(moment: datetime, tz: tzinfo) -> str:
    """A time as a `datetime-local` field shows it, in the display zone."""
    return moment.astimezone(tz).strftime(LOCAL_FORMAT)


def aware(value: str, tz: tzinfo, name: str) -> datetime:
    """A `datetime-local` value read in the display zone (one with an offset is kept as given)."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise FormInvalid(name, f"{FIELDS_VI[name]}: '{value[:40]}' không phải ngày giờ (dd/mm/yyyy HH:MM).") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=tz)


def _field_of_path(pointer: str) -> str:
    parts = [p for p in pointer.split("/") if p]
    if not parts:
        return "title"
    two = "/".join(parts[:2])
    return _PATHS.get(two) or _PATHS.get(parts[0]) or (parts[0] if parts[0] in FIELDS_VI else "title")


def payload_invalid(e: PayloadError) -> FormInvalid:
    """The API's shape refusal, in Vietnamese, naming the form's field."""
    first = e.errors[0] if e.errors else {"path": "", "message": str(e)}
    name = _field_of_path(first["path"])
    message = first["message"]
    limit = re.search(r"(\d+)", message)
    if "must not be empty" in message:
        why = "không được để trống."
    elif "longer than" in message and limit:
        why = f"dài quá {limit.group(1)} ký tự."
    elif ("at least" in message or "at most" in message) and name == "repeats":
        why = f"phải từ 1 đến {MAX_REPEATS}."
    elif "must be one of" in message:
        why = "giá trị không có trong danh sách được chọn."
    elif "more than" in message and limit:
        why = f"nhiều quá {limit.group(1)} mục."
    else:
        why = f"không hợp lệ ({message})."
    return FormInvalid(name, f"{FIELDS_VI[name]}: {why}")


def domain_invalid(message: str) -> FormInvalid:
    """A refusal of the domain's content rules (InvalidValue, UnknownArea), in Vietnamese, naming the field."""
    text = message.lower()
    if "unknown-area" in text or "is registered" in text or "area code" in text or "endpoint" in text:
        return FormInvalid("targets", f"Địa bàn nhận tin: có mã khu vực không tồn tại ({message}).")
    if text.startswith("expiry"):
        if "not in the future" in text:
            return FormInvalid("expires_at", "Hết hạn lúc: phải là một thời điểm trong tương lai.")
        return FormInvalid("expires_at", f"Hết hạn lúc: quá xa; ({message}).")
    if text.startswith("scheduled time"):
        if "in the past" in text:
            return FormInvalid("schedule_at", "Thời điểm phát: thời điểm này đã qua.")
        if "not before the expiry" in text:
            return FormInvalid("schedule_at", "Thời điểm phát: phải trước thời điểm hết hạn.")
        return FormInvalid("schedule_at", f"Thời điểm phát: không hợp lệ ({message}).")
    if "target" in text:
        return FormInvalid("targets", "Địa bàn nhận tin: chọn ít nhất một khu vực.")
    if text.startswith("repeats"):
        return FormInvalid("repeats", f"Số lần phát: phải từ 1 đến {MAX_REPEATS}.")
    if "channel" in text:
        return FormInvalid("channels", "Kênh phát: chọn ít nhất một kênh hợp lệ.")
    if "priority" in text:
        return FormInvalid("priority", "Mức độ: hãy chọn một mức độ.")
    for name in ("title", "text"):
        if text.startswith(name):
            if "must not be empty" in text:
                return FormInvalid(name, f"{FIELDS_VI[name]}: không được để trống.")
            if "control characters" in text:
                return FormInvalid(name, f"{FIELDS_VI[name]}: có ký tự điều khiển không được phép.")
            return FormInvalid(name, f"{FIELDS_VI[name]}: không hợp lệ ({message}).")
    return FormInvalid("title", f"Bản tin không hợp lệ: {message}")
