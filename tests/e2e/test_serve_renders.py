"""`keng serve` renders in a process of its own, at a lower OS priority, and the HTTP path does not wait for it: with a
backlog of long bulletins to render, webhooks are accepted while that backlog is still there (an ordering, not a
timing); SIGTERM stops the render process with the service."""

from __future__ import annotations

import os
import time
from pathlib import Path

import orjson

from keng.adapters.store.app import Keng
from keng.adapters.store.config import locate_store
from keng.domain.broadcast import BROADCAST_EVENTS
from tests.keng_process import KengHome

PARAGRAPH = (
    "Ủy ban nhân dân phường thông báo lịch cắt điện để bảo dưỡng lưới điện trung thế, đề nghị các hộ gia đình, cơ "
    "sở kinh doanh trên địa bàn chủ động sắp xếp công việc, bảo quản thực phẩm và thiết bị điện. "
)


def long_text(n: int) -> str:
    return f"Bản tin số {n}. " + PARAGRAPH * 20  # about 4,000 characters: seconds of espeak-ng work each


def render_state(data: Path, ids: set[str]) -> tuple[int, int]:
    """(of these broadcasts, how many still need audio; how many have been claimed by a render worker)."""
    app = Keng(env=locate_store(f"sqlite:///{data / 'keng.db'}", data).env)
    try:
        states = {str(bid): b for bid, b in app.aggregates_of(*BROADCAST_EVENTS).items() if str(bid) in ids}
        pending = sum(1 for b in states.values() if b.needs_render)
        return pending, sum(1 for b in states.values() if b.render_claim is not None)
    finally:
        app.close()


def stat_of(pid: int, thread: int | None = None) -> tuple[int, int]:
    """(parent pid, niceness) of a process (its main thread), or of one of its threads, from /proc."""
    path = Path(f"/proc/{pid}/task/{thread}/stat") if thread else Path(f"/proc/{pid}/stat")
    fields = path.read_text().rsplit(")", 1)[1].split()
    return int(fields[1]), int(fields[16])


def test_webhooks_are_accepted_while_a_render_backlog_waits_in_a_lower_priority_process(home: KengHome) -> None:
    home.run("init", "--sample")
    secret = home.run("integration", "add", "city-source", "--jurisdiction", "01").stdout.split()[0]
    client = home.serve()
    assert home.proc is not None
    long_ids = set()
    for n in range(12):
        body = orjson.dumps(
            {"title": f"Lịch cắt điện {n}", "text": long_text(n), "priority": "normal", "targets": {"areas": ["00598"]}}
        )
        reply = client.signed("/api/v1/hooks/city-source", body, secret, f"long-{n}")
        assert reply.status == 202, reply.body
        long_ids.add(reply.json()["broadcast_id"])
    deadline = time.time() + 60
    while render_state(home.data, long_ids)[1] == 0:  # the render process is at work on the backlog
        assert time.time() < deadline, home.log.read_text()
        time.sleep(0.2)
    for n in range(40):
        body = orjson.dumps(
            {
                "title": "Thông báo",
                "text": f"Thông báo ngắn số {n}.",
                "priority": "normal",
                "targets": {"areas": ["00598"]},
            }
        )
        reply = client.signed("/api/v1/hooks/city-source", body, secret, f"short-{n}")
        assert reply.status == 202, reply.body
    pending, _ = render_state(home.data, long_ids)
    assert pending > 0  # all 40 were accepted while long bulletins were still waiting for their audio

    started = [orjson.loads(line) for line in home.log.read_text().splitlines() if "render.process_started" in line]
    assert len(started) == 1, home.log.read_text()
    pid = started[0]["pid"]
    parent, own = stat_of(pid)
    assert pid != home.proc.pid and parent == home.proc.pid  # a process of its own, the service's child
    base = stat_of(home.proc.pid)[1]
    # It renders at a lower priority (KENG_RENDER_NICE's default); the thread that writes to the store keeps the
    # service's, so that it never holds the store's write lock while the OS lets it wait.
    assert stat_of(pid, started[0]["render_thread"])[1] == min(19, base + 10) == started[0]["nice"]
    assert stat_of(pid, started[0]["writer_thread"])[1] == base == own

    assert home.stop() == 0, home.log.read_text()
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        pass
    else:
        raise AssertionError(f"render process {pid} outlived the service")
    stopped = [orjson.loads(line) for line in home.log.read_text().splitlines() if "render.process_stopped" in line]
    assert len(stopped) == 1 and stopped[0].get("rendered", 0) >= 1  # it finished its render in hand, then stopped
