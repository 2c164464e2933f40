"""The authority matrix of docs/authority.md, cell by cell, over real HTTP on SQLite and PostgreSQL.

The table in the document is the single source: this test parses it, prepares a broadcast in the state each command
needs with the targets of each column, sends the command as the row's person, and checks the status and the rule named.
A refusal must leave the event count unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from keng.adapters.secrets import SecretStore
from keng.adapters.store.app import Keng
from keng.runtime.config import load_settings
from keng.runtime.http.services import Services
from keng.services import broadcasts
from keng.services.access import issue_token
from tests.http_server import Client, Reply, serve

DOC = Path(__file__).resolve().parents[2] / "docs" / "authority.md"
COLUMNS = {"own": ["00595"], "foreign": ["00598"], "both": ["00595", "00598"], "district": ["021"]}


@dataclass(frozen=True)
class Cell:
    person: str
    command: str
    column: str
    status: int
    rule: str | None


def matrix() -> list[Cell]:
    """Every cell of the table under '## The matrix'."""
    text = DOC.read_text(encoding="utf-8").split("## The matrix", 1)[1]
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| person")]
    cells = []
    for row in rows:
        person, _roles, command, *outcomes = (part.strip() for part in row.strip("|").split("|"))
        assert len(outcomes) == len(COLUMNS), row
        for column, outcome in zip(COLUMNS, outcomes, strict=True):
            status, _, rule = outcome.partition(" ")
            cells.append(Cell(person, command, column, int(status), rule or None))
    return cells


def test_the_matrix_covers_every_person_command_and_target() -> None:
    cells = matrix()
    people = {c.person for c in cells}
    commands = {c.command for c in cells}
    assert people == {"tuan.do", "ha.vu", "lan.nguyen", "hung.tran", "mai.le"}
    assert commands == set(COMMANDS)
    assert len(cells) == len(people) * len(commands) * len(COLUMNS)


class Setup:
    """Broadcasts in a given state, drafted by the district-wide drafter, written straight to the store."""

    def __init__(self, app: Keng) -> None:
        self.app = app

    def draft(self, areas: list[str], priority: str = "normal") -> UUID:
        return broadcasts.draft(
            self.app,
            by="lan.nguyen",
            title="Ma trận quyền",
            text="Kiểm tra quyền.",
            priority=priority,
            target_areas=areas,
        )

    def submitted(self, areas: list[str], priority: str = "normal") -> UUID:
        bid = self.draft(areas, priority)
        broadcasts.submit(self.app, bid, by="lan.nguyen")
        return bid

    def on_air(self, areas: list[str]) -> UUID:
        bid = self.submitted(areas, "emergency")
        broadcasts.approve(self.app, bid, by="hung.tran")
        item = self.app.broadcast(bid)
        item.open_dispatch(now=self.app.clock())
        self.app.save_changes(item)
        return bid

    def standing_order(self, areas: list[str]) -> UUID:
        bid = self.submitted(areas, "emergency")
        item = self.app.broadcast(bid)
        item.auto_approve(rule="test standing order", now=self.app.clock())
        self.app.save_changes(item)
        return bid


Send = Callable[[Client, UUID, str], Reply]


def _post(action: str, body: Any = None) -> Send:
    return lambda client, bid, token: client.json("POST", f"/api/v1/broadcasts/{bid}/{action}", body, token)


def _patch(body: dict[str, Any]) -> Send:
    return lambda client, bid, token: client.json("PATCH", f"/api/v1/broadcasts/{bid}", body, token)


def _get(client: Client, bid: UUID, token: str) -> Reply:
    return client.json("GET", f"/api/v1/broadcasts/{bid}", None, token)


COMMANDS: dict[str, tuple[Callable[[Setup], Callable[[list[str]], UUID]], Send]] = {
    "read": (lambda s: s.draft, _get),
    "revise": (lambda s: s.draft, _patch({"text": "Nội dung sửa lại."})),
    "retarget": (lambda s: s.draft, _patch({"targets": {"areas": ["00595"]}})),
    "submit": (lambda s: s.draft, _post("submit")),
    "approve": (lambda s: s.submitted, _post("approve")),
    "reject": (lambda s: s.submitted, _post("reject", {"reason": "Sai nội dung"})),
    "cancel": (lambda s: s.draft, _post("cancel", {"reason": "Không cần nữa"})),
    "cancel on air": (lambda s: s.on_air, _post("cancel", {"reason": "Báo động nhầm"})),
    "ratify": (lambda s: s.standing_order, _post("ratify")),
    "retract": (lambda s: s.standing_order, _post("retract", {"reason": "Quy tắc áp dụng nhầm"})),
}


@pytest.fixture
def served(sample_app: Keng, tmp_path: Path) -> Iterator[tuple[Client, dict[str, str], Keng]]:
    settings = load_settings(data_dir=str(tmp_path), environ={})
    tokens = {
        h: issue_token(sample_app, staff=h, label="matrix", by="admin")
        for h in ("tuan.do", "ha.vu", "lan.nguyen", "hung.tran", "mai.le")
    }
    services = Services(app=sample_app, secrets=SecretStore(tmp_path), settings=settings)
    with serve(services) as client:
        yield client, tokens, sample_app


def _check(cell: Cell, reply: Reply, before: int, after: int) -> str | None:
    if reply.status != cell.status:
        return f"{cell}: got {reply.status} {reply.body[:200]!r}"
    if cell.status >= 400:
        detail = reply.json().get("detail", "")
        if cell.rule and cell.rule not in detail:
            return f"{cell}: the refusal does not name {cell.rule!r}: {detail!r}"
        if after != before:
            return f"{cell}: a refused command stored {after - before} events"
    return None


def test_every_cell_of_the_authority_matrix_holds_over_http(served: tuple[Client, dict[str, str], Keng]) -> None:
    client, tokens, app = served
    setup = Setup(app)
    wrong: list[str] = []
    for cell in matrix():
        prepare, send = COMMANDS[cell.command]
        bid = prepare(setup)(COLUMNS[cell.column])
        before = app.max_position()
        reply = send(client, bid, tokens[cell.person])
        problem = _check(cell, reply, before, app.max_position())
        if problem is None and cell.command == "read":
            listed = {b["id"] for b in client.json("GET", "/api/v1/broadcasts", None, tokens[cell.person]).json()}
            if (str(bid) in listed) != (cell.status == 200):
                problem = f"{cell}: the list {'omits' if cell.status == 200 else 'shows'} the broadcast"
        if problem:
            wrong.append(problem)
    assert not wrong, "\n".join(wrong)


def test_a_ward_drafter_cannot_retarget_a_district_emergency_to_their_ward(
    served: tuple[Client, dict[str, str], Keng],
) -> None:
    client, tokens, app = served
    bid = Setup(app).submitted(["021"], "emergency")
    before = app.max_position()
    reply = client.json("PATCH", f"/api/v1/broadcasts/{bid}", {"targets": {"areas": ["00595"]}}, tokens["tuan.do"])
    assert reply.status == 403 and re.search(r"approver-area-scope.*021", reply.json()["detail"])
    assert app.max_position() == before and app.broadcast(bid).target_areas == ["021"]


def test_ward_staff_list_only_their_wards_endpoints(served: tuple[Client, dict[str, str], Keng]) -> None:
    client, tokens, _ = served
    wards = {e["ward"] for e in client.json("GET", "/api/v1/endpoints", None, tokens["tuan.do"]).json()}
    assert wards <= {"00595", "021"} and "00595" in wards
    everything = {e["ward"] for e in client.json("GET", "/api/v1/endpoints", None, tokens["mai.le"]).json()}
    assert {"00595", "00598"} <= everything
