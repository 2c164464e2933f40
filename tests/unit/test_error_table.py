"""One error table for the CLI and the API: every domain rule has an entry (a new error cannot be forgotten), both front
ends read the same one, and problem kinds have titles in English and Vietnamese."""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from keng.adapters.city_source import PayloadError
from keng.adapters.store.errors import NotFound
from keng.domain.errors import DomainError, EmergencyCancelRefused, OutOfScope, SelfApprovalRefused
from keng.runtime.errors import KINDS, OTHERS, RULES, entry_for, headline_for
from keng.runtime.http.app import _KIND_BY_STATUS
from keng.runtime.http.problems import preferred_language, problem_for

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("domain", "projections", "adapters", "services", "runtime")


def _every_domain_error() -> list[type[DomainError]]:
    """Every DomainError subclass of the code base (each module imported, so that none hides)."""
    for name in PACKAGES:
        if not (ROOT / name).is_dir():
            continue
        package = importlib.import_module(f"keng.{name}")  # never the bare name: a second copy of every class
        for module in pkgutil.walk_packages(package.__path__, f"keng.{name}."):
            if not module.name.endswith(".__main__"):
                importlib.import_module(module.name)

    def below(cls: type[DomainError]) -> Iterator[type[DomainError]]:
        for sub in cls.__subclasses__():
            yield sub
            yield from below(sub)

    return [DomainError, *dict.fromkeys(below(DomainError))]


def test_every_domain_error_names_its_own_rule_and_the_table_has_an_entry_for_it() -> None:
    errors = _every_domain_error()
    assert len(errors) > 15
    missing = [f"{cls.__module__}.{cls.__name__} ({cls.rule})" for cls in errors if cls.rule not in RULES]
    assert not missing, f"add these rules to runtime/errors.py RULES: {missing}"
    own = [cls for cls in errors if "rule" not in cls.__dict__]
    assert not own, f"each DomainError subclass names its own rule: {own}"
    rules = [cls.rule for cls in errors]
    assert len(rules) == len(set(rules)), "two errors share a rule slug"
    assert not set(RULES) - set(rules), "the table names a rule no error has"


def test_every_problem_kind_has_an_english_and_a_vietnamese_title() -> None:
    kinds = {entry.kind for entry in RULES.values()} | {entry.kind for _, entry in OTHERS}
    kinds |= set(_KIND_BY_STATUS.values()) | {"http-error", "internal-error"}
    for path in (ROOT / "runtime").rglob("*.py"):  # kinds the HTTP layer raises itself
        kinds |= set(re.findall(r'Problem\(\s*[^,()]+(?:\([^)]*\))?[^,]*,\s*"([a-z0-9-]+)"', path.read_text()))
    assert "range-not-satisfiable" in kinds and "unsupported-media-type" in kinds  # the scan finds them
    untitled = sorted(kinds - set(KINDS))
    assert not untitled, f"add titles to runtime/errors.py KINDS: {untitled}"
    for titles in KINDS.values():
        assert titles.en.isascii() and not titles.vi.isascii()


@pytest.mark.parametrize(
    ("error", "status", "kind", "headline"),
    [
        (SelfApprovalRefused("rule approver-is-not-drafter"), 403, "self-approval", "không được tự duyệt"),
        (OutOfScope("rule approver-area-scope"), 403, "forbidden", "Ngoài phạm vi địa bàn được giao"),
        (EmergencyCancelRefused("x"), 403, "forbidden", "bản tin khẩn cấp đang phát"),
        (NotFound("broadcast not found"), 404, "not-found", "Không tìm thấy"),
        (PayloadError(400, "malformed JSON"), 400, "malformed-json", "JSON không hợp lệ"),
        (PayloadError(422, "unknown field"), 422, "invalid-payload", "Nội dung yêu cầu không hợp lệ"),
    ],
)
def test_the_cli_and_the_api_say_the_same_thing_about_an_error(
    error: Exception, status: int, kind: str, headline: str
) -> None:
    problem = problem_for(error)
    assert problem is not None and (problem.status, problem.kind) == (status, kind)
    cli = headline_for(error)
    assert cli is not None and headline in cli and problem.headline_vi == cli


def test_errors_nobody_expected_and_cli_only_errors_are_not_problems() -> None:
    from keng.adapters.store.config import StoreConfigError

    assert entry_for(KeyError("x")) is None and headline_for(KeyError("x")) is None
    assert problem_for(StoreConfigError("bad URL")) is None  # a 500 for the API: never the client's fault
    assert headline_for(StoreConfigError("bad URL")) == "Cấu hình kho dữ liệu không hợp lệ"


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("vi", "vi"),
        ("vi-VN", "vi"),
        ("VI-vn;q=0.8, fr", "vi"),
        ("en-US,en;q=0.9,vi;q=0.8", "en"),
        ("en;q=0.5, vi-VN", "vi"),
        ("en, vi", "en"),
        ("vi;q=0, en;q=0.1", "en"),
        ("vi;q=0", "en"),
        ("vi;q=abc", "en"),
        ("vi;q=2", "en"),
        ("*", "en"),
        ("fr-FR, de", "en"),
        ("", "en"),
        (None, "en"),
    ],
)
def test_problems_use_the_language_the_client_prefers(header: str | None, language: str) -> None:
    assert preferred_language(header) == language
