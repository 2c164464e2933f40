"""What the CLI says when a command fails: a Vietnamese headline for each known error type, the English detail (which
names the broken rule) and the rule's slug. Kept out of main.py so that parsing (`keng --help`) imports none of the
modules that define these errors."""

from __future__ import annotations

from typing import NamedTuple

from adapters.cap.errors import CapError
from adapters.district_file import DistrictFileError
from adapters.mqtt.broker import BrokerConfigError
from adapters.store.config import StoreConfigError
from adapters.store.errors import ConcurrencyConflict, DuplicateRecord, NotFound
from domain.cap_places import CapRefused
from domain.errors import (
    DomainError,
    ExpiredBroadcast,
    IllegalTransition,
    InvalidValue,
    NotApproved,
    NotAuthorised,
    OutOfScope,
    SelfApprovalRefused,
    UnknownArea,
)
from runtime.bootstrap import StartupError
from runtime.cli.output import CommandError

# Most specific first: the first matching class gives the Vietnamese headline.
HEADLINES: list[tuple[type[BaseException], str]] = [
    (SelfApprovalRefused, "Người soạn hoặc sửa bản tin không được tự duyệt"),
    (OutOfScope, "Ngoài phạm vi địa bàn được giao"),
    (NotAuthorised, "Không có quyền thực hiện"),
    (ExpiredBroadcast, "Bản tin đã hết hạn"),
    (NotApproved, "Bản tin chưa được duyệt"),
    (IllegalTransition, "Thao tác không hợp lệ ở trạng thái hiện tại"),
    (UnknownArea, "Địa bàn hoặc thiết bị không tồn tại"),
    (InvalidValue, "Dữ liệu không hợp lệ"),
    (CapRefused, "Bản tin CAP không thể tiếp nhận"),
    (CapError, "Tài liệu CAP không hợp lệ"),
    (DomainError, "Vi phạm quy tắc"),
    (NotFound, "Không tìm thấy"),
    (DuplicateRecord, "Đã tồn tại"),
    (ConcurrencyConflict, "Xung đột: dữ liệu vừa được người khác thay đổi"),
    (DistrictFileError, "Tệp địa bàn có lỗi"),
    (StoreConfigError, "Cấu hình kho dữ liệu không hợp lệ"),
    (StartupError, "Không mở được kho dữ liệu"),
    (BrokerConfigError, "Cấu hình broker MQTT không hợp lệ"),
]
UNEXPECTED = "sự cố ngoài dự kiến"


class Failure(NamedTuple):
    """A failed command as reported: `rule` is the broken rule's slug when the error names one."""

    headline: str
    detail: str
    rule: str | None


def headline_for(error: BaseException) -> str | None:
    """The Vietnamese headline for a known error type."""
    return next((text for kind, text in HEADLINES if isinstance(error, kind)), None)


def failure_of(error: BaseException) -> Failure | None:
    """The report for an error the CLI expects (None for one it does not: a crash)."""
    if isinstance(error, CommandError):
        return Failure(error.headline, error.detail, error.rule)
    headline = headline_for(error)
    return None if headline is None else Failure(headline, str(error), getattr(error, "rule", None))


def unexpected(error: BaseException) -> Failure:
    """The report for a crash (its traceback goes to the log)."""
    return Failure(UNEXPECTED, f"unexpected {type(error).__name__}: {error}", None)
