"""services/access.py on a real SQLite store and secret file: tokens are stored as hashes and end with revocation,
integrations keep their secrets in the secret store, staff records change only at an admin's command."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from keng.adapters.secrets import SecretStore
from keng.adapters.store.app import Keng
from keng.adapters.store.errors import DuplicateRecord, NotFound
from keng.domain.access import Integration, integration_id
from keng.domain.errors import NotAuthorised, UnknownArea
from keng.services import access
from keng.services.access import Unauthenticated
from tests.integration.small_district import START, WARD_A, Clock, open_district


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Keng]:
    app = open_district(tmp_path, Clock())
    yield app
    app.close()


@pytest.fixture
def secrets(tmp_path: Path) -> SecretStore:
    return SecretStore(tmp_path)


def integration(app: Keng, name: str) -> Integration:
    return app.load(Integration, integration_id(name), name)


def test_an_issued_token_authenticates_its_holder_and_only_its_hash_is_recorded(app: Keng) -> None:
    token = access.issue_token(app, staff="tuan", label="laptop", by="admin")
    assert token.startswith("keng_") and access.authenticate(app, token).handle == "tuan"
    recorded = [str(vars(e)) for _, e in app.read_events()]
    assert not any(token in r for r in recorded)


@pytest.mark.parametrize(
    ("token", "why"),
    [("Bearer abc", "malformed"), ("keng_" + "x" * 300, "malformed"), ("keng_unknown", "not known")],
)
def test_a_malformed_or_unknown_token_is_refused(app: Keng, token: str, why: str) -> None:
    with pytest.raises(Unauthenticated, match=why):
        access.authenticate(app, token)


def test_revoking_a_members_tokens_ends_them_all_and_leaves_other_members_tokens(app: Keng) -> None:
    first, second = (access.issue_token(app, staff="tuan", label=n, by="admin") for n in ("a", "b"))
    other = access.issue_token(app, staff="lan", label="c", by="admin")
    assert access.revoke_tokens(app, staff="tuan", by="admin") == 2
    for token in (first, second):
        with pytest.raises(Unauthenticated, match="revoked"):
            access.authenticate(app, token)
    assert access.authenticate(app, other).handle == "lan"
    assert access.revoke_tokens(app, staff="tuan", by="admin") == 0


def test_a_token_for_someone_not_enrolled_is_refused(app: Keng) -> None:
    with pytest.raises(NotFound, match="staff member 'nobody'"):
        access.issue_token(app, staff="nobody", label="", by="admin")
    with pytest.raises(NotFound, match="staff member 'nobody'"):
        access.revoke_tokens(app, staff="nobody", by="admin")


def test_administrative_commands_by_someone_other_than_an_admin_are_refused_and_write_nothing(
    app: Keng, secrets: SecretStore
) -> None:
    before = app.max_position()
    commands = [
        lambda: access.issue_token(app, staff="tuan", label="", by="hung"),
        lambda: access.revoke_tokens(app, staff="tuan", by="hung"),
        lambda: access.add_integration(app, secrets, name="city", kind="city-source", jurisdiction=["021"], by="hung"),
        lambda: access.enrol_staff(app, handle="new", name="Người mới", roles=["drafter"], by="hung"),
        lambda: access.grant_role(app, "tuan", "approver", by="hung"),
        lambda: access.revoke_role(app, "hung", "approver", by="hung"),
        lambda: access.record_training(app, "tuan", "Sơ cứu", by="hung"),
    ]
    for command in commands:
        with pytest.raises(NotAuthorised, match="administer staff and inventory"):
            command()
    with pytest.raises(NotFound, match="staff member 'system'"):
        access.enrol_staff(app, handle="new", name="Người mới", roles=["drafter"], by=access.SYSTEM)
    assert app.max_position() == before and not secrets.path.exists()


def test_an_integration_keeps_its_secrets_in_the_store_and_its_fingerprints_in_the_log(
    app: Keng, secrets: SecretStore
) -> None:
    first = access.add_integration(
        app, secrets, name="city", kind="city-source", jurisdiction=["021"], by="admin", fetch_hosts=["Data.Local"]
    )
    second = access.rotate_secret(app, secrets, name="city", by="admin")
    fingerprints = integration(app, "city").secrets
    assert sorted(secrets.active("city", fingerprints)) == sorted([first, second])
    access.retire_secret(app, secrets, name="city", fingerprint=fingerprints[0], by="admin")
    assert integration(app, "city").secrets == fingerprints[1:]
    assert secrets.active("city", fingerprints) == [second]  # the retired secret is forgotten
    assert access.set_fetch_hosts(app, name="city", hosts=[], by="admin") == []
    assert [i.name for i in access.integrations(app)] == ["city"]


def test_an_integration_outside_the_registered_areas_or_added_twice_is_refused(app: Keng, secrets: SecretStore) -> None:
    with pytest.raises(UnknownArea):
        access.add_integration(app, secrets, name="city", kind="city-source", jurisdiction=["99999"], by="admin")
    access.add_integration(app, secrets, name="city", kind="city-source", jurisdiction=["021"], by="admin")
    with pytest.raises(DuplicateRecord):
        access.add_integration(app, secrets, name="city", kind="city-source", jurisdiction=["021"], by="admin")


def test_cap_senders_are_replaced_by_an_admin(app: Keng, secrets: SecretStore) -> None:
    access.add_integration(
        app, secrets, name="kttv", kind="cap", jurisdiction=["021"], by="admin", senders=["kttv@hanoi.gov.vn"]
    )
    access.set_senders(app, name="kttv", senders=["new@hanoi.gov.vn"], by="admin")
    assert integration(app, "kttv").senders == ["new@hanoi.gov.vn"]


def test_staff_enrolled_by_an_admin_get_roles_and_training_recorded_by_the_applications_clock(app: Keng) -> None:
    access.enrol_staff(app, handle="Nam.Ho", name="Hồ Văn Nam", roles=["drafter"], wards=[WARD_A], by="admin")
    access.grant_role(app, "nam.ho", "approver", by="admin")
    access.revoke_role(app, "nam.ho", "drafter", by="admin")
    access.record_training(app, "nam.ho", "Soạn tin khẩn cấp", by="admin")
    access.record_training(app, "nam.ho", "Sơ cứu", on=date(2026, 1, 5), by="admin")
    member = app.staff("nam.ho")
    assert (member.roles, member.wards, member.enrolled_by) == (["approver"], [WARD_A], "admin")
    assert member.trainings == [
        {"course": "Soạn tin khẩn cấp", "completed_on": START.date().isoformat()},
        {"course": "Sơ cứu", "completed_on": "2026-01-05"},
    ]


def test_a_member_limited_to_a_group_or_an_unknown_ward_is_refused(app: Keng) -> None:
    with pytest.raises(UnknownArea, match="is a group, not a ward"):
        access.enrol_staff(app, handle="nam", name="Nam", roles=["drafter"], wards=[f"{WARD_A}-T01"], by="admin")
    with pytest.raises(UnknownArea, match="no area with code '99999'"):
        access.enrol_by_system(app, handle="nam", name="Nam", roles=["drafter"], wards=["99999"])
