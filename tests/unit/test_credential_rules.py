"""domain/credential.py: lock-out after repeated failures within the window, sessions ended by a generation, and
password strength; pure domain logic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keng.domain.credential import (
    FAILURE_WINDOW,
    LOCK_FOR,
    MAX_FAILURES,
    Credential,
    SignInLocked,
    check_password_strength,
    credential_id,
)
from keng.domain.errors import InvalidValue

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def test_the_fifth_failure_within_the_window_locks_for_a_quarter_hour() -> None:
    c = Credential.open("lan")
    for i in range(MAX_FAILURES - 1):
        assert c.failed(T0 + timedelta(seconds=i)) is None
    until = c.failed(T0 + timedelta(seconds=10))
    assert until == T0 + timedelta(seconds=10) + LOCK_FOR
    with pytest.raises(SignInLocked) as refused:
        c.signed_in("password", T0 + timedelta(minutes=5))
    assert refused.value.until == until
    with pytest.raises(SignInLocked):
        c.failed(T0 + timedelta(minutes=5))  # nothing is recorded while locked
    c.signed_in("password", until + timedelta(seconds=1))


def test_failures_spread_beyond_the_window_never_lock() -> None:
    c = Credential.open("lan")
    for i in range(MAX_FAILURES * 3):
        assert c.failed(T0 + i * FAILURE_WINDOW / (MAX_FAILURES - 1)) is None


def test_a_success_forgets_earlier_failures() -> None:
    c = Credential.open("lan")
    for i in range(MAX_FAILURES - 1):
        c.failed(T0 + timedelta(seconds=i))
    c.signed_in("token", T0 + timedelta(seconds=30))
    assert c.failed(T0 + timedelta(seconds=31)) is None


def test_setting_a_password_or_ending_sessions_raises_the_generation() -> None:
    c = Credential.open("lan")
    assert c.generation == 0
    c.password_set(by="admin")
    c.end_sessions(by="lan")
    assert c.generation == 2 and c.has_password
    assert c.id == credential_id("LAN")


def test_an_unknown_sign_in_method_is_refused() -> None:
    with pytest.raises(InvalidValue):
        Credential.open("lan").signed_in("magic", T0)


@given(st.text(max_size=300))
def test_password_strength_accepts_only_long_printable_unpadded_text(password: str) -> None:
    ok = 10 <= len(password) <= 256 and password.strip() == password and password.isprintable()
    if ok:
        check_password_strength(password)
    else:
        with pytest.raises(InvalidValue):
            check_password_strength(password)
