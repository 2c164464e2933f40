"""The CAP senders of an integration, configured through the CLI against a real store: set when it is added, changed
by an admin, each sender held by one integration at most, and every refusal precise with nothing stored."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from keng.runtime.cli.main import main
from tests.unit.cap_builders import SENDER


@pytest.fixture
def keng(tmp_path: Path) -> list[str]:
    """The CLI's arguments for a data directory holding the sample district."""
    data = ["--data", str(tmp_path)]
    assert main([*data, "init", "--sample"]) == 0
    return data


def senders(keng: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, list[str]]:
    capsys.readouterr()
    assert main([*keng, "integration", "list", "--json"]) == 0
    return {i["name"]: i["senders"] for i in orjson.loads(capsys.readouterr().out)}


def refused(keng: list[str], capsys: pytest.CaptureFixture[str], argv: list[str], *fragments: str) -> None:
    before = senders(keng, capsys)
    assert main([*keng, *argv]) == 1
    err = capsys.readouterr().err
    assert all(f in err for f in fragments), err
    assert senders(keng, capsys) == before


def test_senders_are_set_with_the_integration_and_replaced_by_an_admin(
    keng: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    add = ["integration", "add", "kttv", "--kind", "cap", "--jurisdiction", "01"]
    assert main([*keng, *add, "--sender", SENDER, "--sender", "kttv2@hanoi.gov.vn"]) == 0
    assert senders(keng, capsys) == {"kttv": ["kttv2@hanoi.gov.vn", SENDER]}
    assert main([*keng, "integration", "senders", "kttv", "--sender", "new@hanoi.gov.vn"]) == 0
    assert senders(keng, capsys) == {"kttv": ["new@hanoi.gov.vn"]}


def test_a_cap_integration_needs_a_sender_and_a_sender_belongs_to_one_integration(
    keng: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    add = ["integration", "add", "--kind", "cap", "--jurisdiction", "01"]
    refused(keng, capsys, [*add, "kttv"], "at least one --sender")
    assert main([*keng, *add, "kttv", "--sender", SENDER]) == 0
    refused(keng, capsys, [*add, "other", "--sender", SENDER], "sender-owned-once", "belongs to integration 'kttv'")
    assert main([*keng, *add, "other", "--sender", "other@x"]) == 0
    refused(keng, capsys, ["integration", "senders", "other", "--sender", SENDER], "sender-owned-once")
    refused(keng, capsys, ["integration", "senders", "other", "--sender", "a b"], "without spaces")
    refused(keng, capsys, ["integration", "senders", "other", "--sender", "a,b"], "without spaces")
    assert main([*keng, "integration", "add", "city", "--jurisdiction", "01"]) == 0
    refused(keng, capsys, ["integration", "senders", "city", "--sender", "c@x"], "senders are for CAP integrations")
    refused(keng, capsys, ["integration", "senders", "kttv", "--sender", "k@x", "--as", "lan.nguyen"], "admin")
