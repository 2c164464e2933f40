"""Console sign-in: setting a staff member's password, signing in with a password or an existing API token, lock-out
after repeated failures, and signing out everywhere.

A session is valid while its staff member exists and its `generation` equals the credential's: setting a password or
"sign out everywhere" raises the generation, which ends every session issued before. The rules (lock-out, generations)
are the domain's (domain/credential.py); the hashes are the adapter's (adapters/passwords.py).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime

from keng.adapters.passwords import PasswordStore
from keng.adapters.store.app import Keng
from keng.adapters.store.errors import ConcurrencyConflict, NotFound
from keng.domain.credential import Credential, check_password_strength, credential_id
from keng.domain.staff import Staff
from keng.services.access import SYSTEM, Unauthenticated, authenticate, require_admin

WRONG = "sai tên đăng nhập hoặc mật khẩu (wrong handle or password)"


@dataclass(frozen=True)
class SignedIn:
    """Who signed in, and the session generation their session must carry."""

    staff: Staff
    generation: int


def _credential(app: Keng, handle: str) -> Credential:
    try:
        return app.load(Credential, credential_id(handle), f"credential of {handle!r}")
    except NotFound:
        return Credential.open(handle)


def set_password(app: Keng, passwords: PasswordStore, *, handle: str, password: str, by: str) -> None:
    """Set a staff member's console password (an admin, or `system` for the first admin); every open session of
    theirs ends."""
    if by != SYSTEM:
        require_admin(app, by)
    member = app.staff(handle)
    check_password_strength(password)
    credential = _credential(app, member.handle)
    credential.password_set(by=by)
    passwords.set(member.handle, password)
    app.save_changes(credential)


def sign_in_with_password(app: Keng, passwords: PasswordStore, handle: str, password: str, now: datetime) -> SignedIn:
    """The staff member whose password this is, recorded as signed in; a wrong password is recorded as a failure
    (locking the account after too many); an unknown handle records nothing. Raises Unauthenticated or SignInLocked."""
    handle = handle.strip().lower()
    if not handle or len(handle) > 64 or len(password) > 256:
        raise Unauthenticated(WRONG)
    try:
        member = app.staff(handle)
    except NotFound:
        passwords.verify(handle, password)  # the same work as for a known handle
        raise Unauthenticated(WRONG) from None
    credential = _credential(app, member.handle)
    credential.require_unlocked(now)
    if not passwords.verify(member.handle, password):
        locked_until = credential.failed(now)
        _commit(app, credential)
        if locked_until is not None:
            credential.require_unlocked(now)  # raises SignInLocked, naming the end of the lock
        raise Unauthenticated(WRONG)
    credential.signed_in("password", now)
    _commit(app, credential)
    return SignedIn(member, credential.generation)


def sign_in_with_token(app: Keng, token: str, now: datetime) -> SignedIn:
    """The staff member holding this API token, recorded as signed in (refused while their account is locked)."""
    member = authenticate(app, token.strip())
    credential = _credential(app, member.handle)
    credential.signed_in("token", now)
    _commit(app, credential)
    return SignedIn(member, credential.generation)


def _commit(app: Keng, credential: Credential) -> None:
    with contextlib.suppress(ConcurrencyConflict):  # two attempts at once: the other's record stands
        app.save_changes(credential)


def session_staff(app: Keng, handle: str, generation: int) -> Staff:
    """The staff member of a session issued in `generation`, if it is still valid (else Unauthenticated)."""
    try:
        member = app.staff(handle)
    except NotFound:
        raise Unauthenticated("the session's staff member no longer exists") from None
    if _credential(app, member.handle).generation != generation:
        raise Unauthenticated("the session has ended (signed out everywhere, or the password changed)")
    return member


def end_sessions(app: Keng, *, handle: str, by: str) -> None:
    """Sign a staff member out everywhere (themselves, or an admin for anyone)."""
    if by != handle:
        require_admin(app, by)
    credential = _credential(app, app.staff(handle).handle)
    credential.end_sessions(by=by)
    app.save_changes(credential)
