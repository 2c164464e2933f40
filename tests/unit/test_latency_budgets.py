"""Latency budgets: configuration, the verdict of each dispatch, and a breach recorded as an event, counted as a metric,
carried by the live stream, and shown by `keng broadcast show --json` with the delivery summary and latency figures.
The dispatcher runs over a real store on the recording links of tests/fakes.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from keng.adapters.mqtt import protocol as proto
from keng.domain.budgets import DEFAULT_BUDGET_MS, judge, parse_budgets
from keng.domain.dispatch import Dispatch
from keng.domain.endpoint import Endpoint
from keng.domain.errors import InvalidValue
from keng.projections.catalog import Catalog
from keng.runtime.cli.main import main
from keng.runtime.config import load_settings
from keng.runtime.dispatch.live import RetryPolicy
from keng.runtime.dispatch.metrics import DispatcherCollector
from keng.runtime.http.routes_stream import stream_view
from tests.fakes import FakeInbound, RecordingLink
from tests.integration.harness import Harness

NO_RESENDS = RetryPolicy(first_s=60.0, cap_s=60.0)


def test_budgets_are_configured_per_priority_and_bad_values_are_refused() -> None:
    assert DEFAULT_BUDGET_MS["emergency"] == 1000
    env = {"KENG_LATENCY_BUDGETS": "emergency=500, normal=600000"}
    assert load_settings(environ=env).latency_budgets == {"emergency": 500, "normal": 600000}
    assert load_settings(environ={}).latency_budgets is None
    for bad in ("urgent=5", "emergency=0", "emergency=fast", "emergency=-1"):
        with pytest.raises(InvalidValue, match="KENG_LATENCY_BUDGETS"):
            load_settings(environ={"KENG_LATENCY_BUDGETS": bad})
    assert parse_budgets("") == {}


def test_the_verdict_is_the_p99_against_the_budget_and_silent_online_endpoints_count_as_late() -> None:
    met = judge(priority="emergency", latencies_ms=[100.0] * 99 + [5000.0], silent=0)
    assert (met["verdict"], met["late"], met["counted"], met["p99_ms"]) == ("met", 1, 100, 100.0)
    breached = judge(priority="emergency", latencies_ms=[100.0] * 98, silent=2)
    assert (breached["verdict"], breached["late_share"], breached["p99_ms"]) == ("breached", 0.02, None)
    assert (
        judge(priority="normal", latencies_ms=[2000.0], silent=0, overrides={"normal": 1000})["verdict"] == "breached"
    )


async def test_a_breach_is_an_event_on_the_dispatch_a_metric_a_stream_message_and_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    h = Harness(tmp_path, broker=None)
    inbound = FakeInbound()
    link = RecordingLink(loopback=inbound)
    dispatcher = await h.start_dispatcher(link=link, inbound=inbound, retry=NO_RESENDS, budgets={"emergency": 1})
    try:
        bid = h.broadcast("emergency")
        await h.until(lambda: h.dispatch_of(bid) is not None and len(link.published) >= 1)
        d = h.dispatch_of(bid)
        assert d is not None
        kinds = {e.code: e.kind for e in Catalog().fold(h.app.read_events()).of_type(Endpoint) if e.code in d.targets}
        commands = {p.message["op"]: p.message for p in link.published if proto.parse_ack_topic(p.topic) is None}
        for code, kind in kinds.items():
            command = commands["play" if kind == "ip-speaker" else "display"]
            # a speaker played the file; a board showed the text (its `played` is `displayed`)
            state, sha = (
                ("played", command["audio"]["sha256"]) if "audio" in command else ("displayed", command["text_sha256"])
            )
            message = proto.ack_message(code=code, dispatch_id=str(d.id), seq=1, state=state,
                                        at=datetime.now(UTC), sha256=sha)  # fmt: skip
            inbound.feed(proto.ack_topic(code), proto.encode(message))
        await h.until(lambda: h.closed(bid))
        await h.until(lambda: bool(h.events(Dispatch.Judged)))
        [judged] = [e for e in h.events(Dispatch.Judged) if e.originator_id == d.id]
        assert judged.verdict["verdict"] == "breached" and judged.verdict["budget_ms"] == 1
        assert judged.verdict["late"] == judged.verdict["counted"] == len(kinds) and judged.verdict["late_share"] == 1.0
        message = stream_view(99, judged)
        assert (
            message is not None and message["type"] == "Dispatch.Judged" and message["verdict"]["verdict"] == "breached"
        )
        families = {m.name: m for m in DispatcherCollector(dispatcher).collect()}
        breaches = {s.labels["priority"]: s.value for s in families["keng_latency_budget_breaches"].samples}
        assert breaches["emergency"] == 1 and breaches["normal"] == 0
    finally:
        await h.close()
    capsys.readouterr()  # the harness's log lines
    assert main(["--data", str(tmp_path), "--store", h.store_url, "broadcast", "show", str(bid), "--json"]) == 0
    out = capsys.readouterr().out
    view = json.loads(out[out.index("{") :])
    [wave] = view["delivery"]["waves"]
    assert wave["wave"] == 1 and wave["closed"] and wave["verdict"]["verdict"] == "breached"
    assert wave["summary"]["played"] == len(kinds) and wave["summary"]["latency_ms"]["emergency"]["p99"] > 1
    assert view["delivery"]["breached_waves"] == [1] and view["delivery"]["totals"]["played"] == len(kinds)
    assert view["waiting"] is None
