"""One table of errors for every front end: per refusal, the HTTP status, the problem kind (its `type` is
`urn:keng:problem:<kind>`), the Vietnamese headline ward staff read first, and the kind's English and Vietnamese titles.

Domain errors are looked up by their rule slug (`DomainError.rule`), so that the domain names a rule once and the CLI
and the API say the same thing about it; a unit test fails when a DomainError subclass has no entry. Errors from
outside the domain (the store, signatures, configuration) are looked up by type, most specific first. An entry with no
status is not an HTTP answer (a configuration error of the command line): the API answers those with a 500.
"""

from __future__ import annotations

from dataclasses import dataclass

from keng.adapters.cap.errors import CapError
from keng.adapters.district_file import DistrictFileError
from keng.adapters.mqtt.broker import BrokerConfigError
from keng.adapters.payload import PayloadError
from keng.adapters.signing import SignatureError
from keng.adapters.store.config import StoreConfigError
from keng.adapters.store.errors import ConcurrencyConflict, DuplicateRecord, NotFound
from keng.adapters.store.group_commit import Overloaded
from keng.domain.errors import DomainError
from keng.runtime.bootstrap import StartupError
from keng.services.access import Unauthenticated
from keng.services.inbound import IdempotencyConflict


@dataclass(frozen=True)
class Titles:
    """The title of a problem kind: the same for every occurrence (RFC 9457), in English and in Vietnamese."""

    en: str
    vi: str


@dataclass(frozen=True)
class Entry:
    """How one refusal is reported: `status` (None: not an HTTP answer), the problem `kind`, and a Vietnamese headline
    more precise than the kind's title where the rule deserves one."""

    status: int | None
    kind: str
    headline: str | None = None

    @property
    def headline_vi(self) -> str:
        """The CLI's first words, and the lead-in of a Vietnamese problem detail."""
        return self.headline or titles_of(self.kind).vi


KINDS: dict[str, Titles] = {
    # refusals of domain rules
    "rule-violation": Titles("Rule violation", "Vi phạm quy tắc"),
    "invalid-value": Titles("Invalid value", "Dữ liệu không hợp lệ"),
    "illegal-transition": Titles("Not allowed in the current state", "Thao tác không hợp lệ ở trạng thái hiện tại"),
    "self-approval": Titles("Self-approval refused", "Không được tự duyệt bản tin"),
    "forbidden": Titles("Forbidden", "Không có quyền thực hiện"),
    "expired": Titles("Broadcast expired", "Bản tin đã hết hạn"),
    "not-approved": Titles("Broadcast not approved", "Bản tin chưa được duyệt"),
    "unknown-area": Titles("Unknown area or endpoint", "Địa bàn hoặc thiết bị không tồn tại"),
    "area-ended": Titles("Area no longer in force", "Địa bàn không còn hiệu lực"),
    "outside-jurisdiction": Titles("Outside the sender's jurisdiction", "Ngoài địa bàn được phép của bên gửi"),
    "integration-owns-alert": Titles("Not the alert's creator", "Không phải bên đã tạo cảnh báo"),
    "integration-owns-sender": Titles("Sender not owned", "Không phải người gửi CAP được cấp"),
    "cap-refused": Titles("CAP alert refused", "Bản tin CAP không thể tiếp nhận"),
    # refusals from outside the domain
    "invalid-cap": Titles("Invalid CAP document", "Tài liệu CAP không hợp lệ"),
    "unauthenticated": Titles("Unauthenticated", "Chưa xác thực"),
    "locked-out": Titles("Locked out", "Tài khoản tạm khóa"),
    "bad-signature": Titles("Bad signature", "Chữ ký không hợp lệ"),
    "not-found": Titles("Not found", "Không tìm thấy"),
    "conflict": Titles("Conflict", "Xung đột: dữ liệu vừa được người khác thay đổi"),
    "duplicate": Titles("Already exists", "Đã tồn tại"),
    "idempotency-key-reused": Titles("Idempotency key reused", "Mã chống trùng lặp đã dùng cho nội dung khác"),
    "overloaded": Titles("Overloaded", "Hệ thống đang quá tải"),
    "malformed-json": Titles("Malformed JSON", "JSON không hợp lệ"),
    "invalid-payload": Titles("Invalid payload", "Nội dung yêu cầu không hợp lệ"),
    "district-file": Titles("Invalid district file", "Tệp địa bàn có lỗi"),
    "store-config": Titles("Invalid store configuration", "Cấu hình kho dữ liệu không hợp lệ"),
    "store-unavailable": Titles("Store unavailable", "Không mở được kho dữ liệu"),
    "broker-config": Titles("Invalid MQTT broker configuration", "Cấu hình broker MQTT không hợp lệ"),
    # answers of the HTTP layer itself
    "bad-request": Titles("Bad request", "Yêu cầu không hợp lệ"),
    "unsupported-media-type": Titles("Unsupported media type", "Kiểu nội dung không được hỗ trợ"),
    "range-not-satisfiable": Titles("Range not satisfiable", "Khoảng dữ liệu yêu cầu không hợp lệ"),
    "method-not-allowed": Titles("Method not allowed", "Phương thức không được phép"),
    "body-too-large": Titles("Request body too large", "Nội dung yêu cầu quá lớn"),
    "http-error": Titles("HTTP error", "Lỗi HTTP"),
    "internal-error": Titles("Internal error", "Lỗi hệ thống"),
}

_CAP = (422, "cap-refused")
# By rule slug: every DomainError subclass (domain/errors.py, domain/cap_places.py, domain/cap_mapping.py,
# adapters/cap/ingest.py) names its own rule.
RULES: dict[str, Entry] = {
    "domain-rule": Entry(422, "rule-violation"),
    "invalid-value": Entry(422, "invalid-value"),
    "sender-owned-once": Entry(422, "invalid-value", "Người gửi CAP này đã thuộc về một bên tích hợp khác"),
    "illegal-transition": Entry(409, "illegal-transition"),
    "render-claimed-once": Entry(409, "illegal-transition", "Âm thanh của bản tin này đang hoặc đã được tạo"),
    "approver-is-not-drafter": Entry(403, "self-approval", "Người soạn hoặc sửa bản tin không được tự duyệt"),
    "role-required": Entry(403, "forbidden"),
    "approver-area-scope": Entry(403, "forbidden", "Ngoài phạm vi địa bàn được giao"),
    "emergency-cancel-needs-approver": Entry(
        403, "forbidden", "Chỉ người duyệt mới được hủy bản tin khẩn cấp đang phát"
    ),
    "integration-owns-alert": Entry(
        403, "integration-owns-alert", "Bên tích hợp chỉ được thay đổi cảnh báo do chính mình tạo"
    ),
    "integration-owns-sender": Entry(
        403, "integration-owns-sender", "Bên tích hợp chỉ được gửi dưới tên người gửi CAP được cấp cho mình"
    ),
    "jurisdiction": Entry(422, "outside-jurisdiction"),
    "expired-cannot-be-approved": Entry(409, "expired"),
    "nothing-dispatched-unapproved": Entry(409, "not-approved"),
    "unknown-area": Entry(422, "unknown-area"),
    "area-ended": Entry(
        422, "area-ended", "Mã địa bàn đã hết hiệu lực (sáp nhập, chia tách hoặc giải thể); dùng mã các đơn vị kế thừa"
    ),
    "sign-in-locked": Entry(429, "locked-out", "Tài khoản tạm khóa do đăng nhập sai nhiều lần"),
    "cap-refused": Entry(*_CAP),
    "cap-unknown-area-code": Entry(*_CAP, "Bản tin CAP nêu mã địa bàn không tồn tại"),
    "cap-outside-jurisdiction": Entry(*_CAP, "Bản tin CAP nêu địa bàn ngoài phạm vi được phép"),
    "cap-area-not-locatable": Entry(*_CAP, "Không xác định được địa bàn của bản tin CAP"),
    "cap-needs-vietnamese-info": Entry(*_CAP, "Bản tin CAP cần có phần thông tin tiếng Việt"),
    "cap-unknown-reference": Entry(*_CAP, "Bản tin CAP tham chiếu một cảnh báo không tồn tại"),
    "cap-drill-mismatch": Entry(*_CAP, "Không được lẫn bản tin diễn tập với bản tin thật"),
}

# Errors from outside the domain, most specific first.
OTHERS: list[tuple[type[BaseException], Entry]] = [
    (Unauthenticated, Entry(401, "unauthenticated")),
    (SignatureError, Entry(401, "bad-signature")),
    (NotFound, Entry(404, "not-found")),
    (ConcurrencyConflict, Entry(409, "conflict")),
    (DuplicateRecord, Entry(409, "duplicate")),
    (IdempotencyConflict, Entry(422, "idempotency-key-reused")),
    (Overloaded, Entry(503, "overloaded")),
    (PayloadError, Entry(422, "invalid-payload")),
    (CapError, Entry(422, "invalid-cap")),
    (DistrictFileError, Entry(None, "district-file")),
    (StoreConfigError, Entry(None, "store-config")),
    (StartupError, Entry(None, "store-unavailable")),
    (BrokerConfigError, Entry(None, "broker-config")),
]
_MALFORMED_JSON = Entry(400, "malformed-json")


def entry_for(error: BaseException) -> Entry | None:
    """The table's entry for an error: by the most specific rule slug of a domain error, else by type; None for an
    error nobody expected (a crash, reported as such)."""
    if isinstance(error, DomainError):
        for cls in type(error).__mro__:
            rule = cls.__dict__.get("rule")
            if rule in RULES:
                return RULES[rule]
    if isinstance(error, PayloadError) and error.status == 400:
        return _MALFORMED_JSON  # the body is not JSON at all, rather than JSON of the wrong shape
    return next((entry for kind, entry in OTHERS if isinstance(error, kind)), None)


def headline_for(error: BaseException) -> str | None:
    """The Vietnamese headline for a known error type."""
    entry = entry_for(error)
    return entry.headline_vi if entry else None


def titles_of(kind: str) -> Titles:
    """The titles of a problem kind (a kind missing from the table, which a unit test prevents, reads as itself)."""
    return KINDS.get(kind) or Titles(kind.replace("-", " "), kind.replace("-", " "))
