"""Vietnamese labels of the console: states, priorities, channels, roles, acknowledgement states, and date and number
formats (dd/mm/yyyy, 24-hour clock, in the display time zone, Asia/Ho_Chi_Minh by default)."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

STATES = {
    "draft": "Bản nháp",
    "submitted": "Chờ duyệt",
    "approved": "Đã duyệt",
    "scheduled": "Đã lên lịch",
    "dispatching": "Đang phát",
    "completed": "Đã hoàn thành",
    "cancelled": "Đã hủy",
    "expired": "Đã hết hạn",
    "rejected": "Bị từ chối",
}
PRIORITIES = {"emergency": "Khẩn cấp", "priority": "Ưu tiên", "normal": "Thông thường"}
CHANNELS = {"speaker": "Loa truyền thanh", "eboard": "Bảng tin điện tử", "portal": "Cổng thông tin", "app": "Ứng dụng"}
ROLES = {"drafter": "Soạn tin", "approver": "Duyệt tin", "auditor": "Kiểm toán", "admin": "Quản trị"}
ACKS = {
    "targeted": "Cần phát",
    "received": "Đã nhận",
    "playing": "Đang phát",
    "played": "Đã phát",
    "displayed": "Đã hiển thị",
    "cleared": "Đã gỡ khỏi bảng",
    "failed": "Lỗi",
    "pending": "Chưa phản hồi",
}
DEVICE_STATUS = {"online": "Trực tuyến", "offline": "Mất kết nối", "fault": "Hỏng", "decommissioned": "Đã thanh lý"}
ENDPOINT_KINDS = {
    "ip-speaker": "Loa IP",
    "fm-speaker": "Loa FM",
    "eboard": "Bảng điện tử",
    "led-board": "Màn hình LED",
    "portal": "Cổng thông tin",
}


def label(table: dict[str, str], value: Any) -> str:
    """The Vietnamese label of a value, or the value itself when the table has none."""
    text = "" if value is None else str(value)
    return table.get(text, text)


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def vn_time(value: Any, tz: tzinfo, *, seconds: bool = False) -> str:
    """dd/mm/yyyy HH:MM (24 h) in the display time zone; '' for nothing, the text itself when it is not a time."""
    moment = _as_datetime(value)
    if moment is None:
        return "" if value in (None, "") else str(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(tz)
    return moment.strftime("%d/%m/%Y %H:%M:%S" if seconds else "%d/%m/%Y %H:%M")


def vn_date(value: Any, tz: tzinfo) -> str:
    """dd/mm/yyyy in the display time zone."""
    moment = _as_datetime(value)
    if moment is None:
        return "" if value in (None, "") else str(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(tz)
    return moment.strftime("%d/%m/%Y")


def vn_number(value: Any, digits: int = 0) -> str:
    """A number the Vietnamese way: '.' between thousands, ',' before decimals."""
    if value is None or value == "":
        return "–"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    text = f"{number:,.{digits}f}"
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")


def vn_percent(value: Any, digits: int = 1) -> str:
    """A share (0..1) as a Vietnamese percentage, e.g. 0.953 -> '95,3 %'."""
    if value is None or value == "":
        return "–"
    try:
        return f"{vn_number(float(value) * 100, digits)} %"
    except (TypeError, ValueError):
        return str(value)
