"""services/credentials.py on a real SQLite store, password file and cookie key: passwords set by admins only and kept
out of the event log, lock-out recorded as events, sessions ended by "sign out everywhere" or a new password; and
sealed cookies that cannot be read, altered or replayed after their age."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from keng.adapters.passwords import PasswordStore
from keng.adapters.sealed_cookies import CookieSealer
from keng.adapters.store.app import Keng
from keng.domain.credential import MAX_FAILURES, SignInLocked
from keng.domain.errors import InvalidValue, NotAuthorised
from keng.services import access, credentials
from keng.services.access import Unauthenticated
from tests.integration.small_district import Clock, open_district

PASSWORD = "Mat-khau-dai-2026"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(tmp_path: Path, clock: Clock) -> Iterator[Keng]:
    app = open_district(tmp_path, clock)
    yield app
    app.close()


@pytest.fixture
def passwords(tmp_path: Path) -> PasswordStore:
    return PasswordStore(tmp_path)


def _events(app: Keng) -> list[str]:
    return [type(e).__qualname__ for _, e in app.read_events(0)]


def test_only_an_admin_sets_a_password_and_the_hash_stays_out_of_the_log(
    app: Keng, passwords: PasswordStore, tmp_path: Path
) -> None:
    with pytest.raises(NotAuthorised):
        credentials.set_password(app, passwords, handle="lan", password=PASSWORD, by="hung")
    with pytest.raises(InvalidValue):
        credentials.set_password(app, passwords, handle="lan", password="short", by="admin")
    credentials.set_password(app, passwords, handle="lan", password=PASSWORD, by="admin")
    assert "Credential.PasswordSet" in _events(app)
    stored = (tmp_path / PasswordStore.FILENAME).read_bytes()
    assert b"$argon2id$" in stored and PASSWORD.encode() not in stored
    assert stat.S_IMODE(os.stat(tmp_path / PasswordStore.FILENAME).st_mode) == 0o600
    for _, event in app.read_events(0):
        assert "argon2" not in repr(vars(event))


def test_sign_in_with_a_password_then_lock_out_after_repeated_failures(
    app: Keng, passwords: PasswordStore, clock: Clock
) -> None:
    credentials.set_password(app, passwords, handle="lan", password=PASSWORD, by="admin")
    who = credentials.sign_in_with_password(app, passwords, "LAN ", PASSWORD, clock())
    assert who.staff.handle == "lan"
    for _ in range(MAX_FAILURES - 1):
        with pytest.raises(Unauthenticated):
            credentials.sign_in_with_password(app, passwords, "lan", "wrong-password", clock())
    with pytest.raises(SignInLocked):
        credentials.sign_in_with_password(app, passwords, "lan", "wrong-password", clock())
    before = app.max_position()
    with pytest.raises(SignInLocked):  # the right password does not unlock early, and nothing more is recorded
        credentials.sign_in_with_password(app, passwords, "lan", PASSWORD, clock())
    assert app.max_position() == before
    clock.advance(minutes=16)
    assert credentials.sign_in_with_password(app, passwords, "lan", PASSWORD, clock()).staff.handle == "lan"
    assert _events(app).count("Credential.LockedOut") == 1


def test_unknown_handles_record_nothing(app: Keng, passwords: PasswordStore, clock: Clock) -> None:
    before = app.max_position()
    for handle in ("nobody", "", "x" * 500):
        with pytest.raises(Unauthenticated):
            credentials.sign_in_with_password(app, passwords, handle, "whatever-password", clock())
    assert app.max_position() == before


def test_sessions_end_everywhere_and_with_a_new_password(app: Keng, passwords: PasswordStore, clock: Clock) -> None:
    token = access.issue_token(app, staff="minh", label="", by="admin")
    session = credentials.sign_in_with_token(app, token, clock())
    assert credentials.session_staff(app, "minh", session.generation).handle == "minh"
    with pytest.raises(NotAuthorised):
        credentials.end_sessions(app, handle="minh", by="lan")  # only themselves, or an admin
    credentials.end_sessions(app, handle="minh", by="minh")
    with pytest.raises(Unauthenticated):
        credentials.session_staff(app, "minh", session.generation)
    again = credentials.sign_in_with_token(app, token, clock())
    credentials.set_password(app, passwords, handle="minh", password=PASSWORD, by="admin")
    with pytest.raises(Unauthenticated):
        credentials.session_staff(app, "minh", again.generation)
    with pytest.raises(Unauthenticated):
        credentials.sign_in_with_token(app, "keng_not-a-real-token", clock())


def test_sealed_cookies_cannot_be_read_altered_or_replayed_late(tmp_path: Path) -> None:
    sealer = CookieSealer(tmp_path)
    sealed = sealer.seal({"h": "lan", "g": 3})
    assert "lan" not in sealed
    assert sealer.open(sealed, max_age_s=60) == {"h": "lan", "g": 3}
    altered = sealed[:-6] + ("A" if sealed[-6] != "A" else "B") + sealed[-5:]
    assert sealer.open(altered, max_age_s=60) is None
    assert sealer.open("not a cookie ☃", max_age_s=60) is None
    assert sealer.open("x" * 10_000, max_age_s=60) is None
    assert CookieSealer(tmp_path).open(sealed, max_age_s=60) is not None  # the key is kept in the data directory
    assert CookieSealer(tmp_path / "other").open(sealed, max_age_s=60) is None
    assert stat.S_IMODE(os.stat(tmp_path / CookieSealer.FILENAME).st_mode) == 0o600
    time.sleep(2.1)
    assert sealer.open(sealed, max_age_s=1) is None  # older than its maximum age
