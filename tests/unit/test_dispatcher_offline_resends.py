"""An offline status and resends, without a broker (the recording links of tests/fakes.py): on one broker an endpoint
whose status says offline waits until it comes back; on a broker cluster, where a node can publish a device's last will
after the device has come back through another node, it is sent resends all the same."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from keng.adapters.mqtt import protocol as proto
from keng.adapters.mqtt.broker import parse_broker_url
from keng.runtime.bootstrap import build_dispatcher
from keng.runtime.dispatch.live import RetryPolicy
from keng.services import broadcasts
from tests.fakes import FakeInbound, RecordingLink
from tests.integration.harness import Harness

QUICK = RetryPolicy(first_s=0.3, factor=1.0, cap_s=0.3)


@pytest.mark.parametrize("cluster", [False, True])
async def test_an_offline_status_holds_resends_back_on_one_broker_only(tmp_path: Path, cluster: bool) -> None:
    h = Harness(tmp_path, broker=None)
    inbound = FakeInbound()
    link = RecordingLink(loopback=inbound)
    try:
        dispatcher = await h.start_dispatcher(
            link=link, inbound=inbound, retry=QUICK, offline_stops_resends=not cluster
        )
        speakers = sorted(c for c, cls in dispatcher.classes.items() if cls == proto.SPEAKER)
        away, *others = speakers[:3]
        inbound.feed(proto.status_topic(away), proto.encode(proto.status_message(away, "offline", reason="last-will")))
        for code in others:
            inbound.feed(
                proto.status_topic(code), proto.encode(proto.status_message(code, "online", datetime.now(UTC)))
            )
        await h.until(lambda: dispatcher.online.get(away) is False and all(dispatcher.online.get(c) for c in others))

        bid = broadcasts.draft(
            h.app,
            by="lan.nguyen",
            title="Khẩn cấp",
            text="Đề nghị bà con chú ý.",
            priority="emergency",
            target_endpoints=speakers[:3],
        )
        broadcasts.submit(h.app, bid, by="lan.nguyen")
        broadcasts.approve(h.app, bid, by="hung.tran")
        # nobody acknowledges: every endpoint the dispatcher takes for reachable is asked again, each on its own topic
        await h.until(lambda: all(len(link.to(proto.endpoint_topic(proto.SPEAKER, c))) >= 3 for c in others))
        to_away = link.to(proto.endpoint_topic(proto.SPEAKER, away))
        first = 1  # the first publish: a command to each endpoint targeted one by one
        if cluster:
            assert len(to_away) > first  # resent although its (possibly stale) status says offline
        else:
            assert len(to_away) == first  # waits until it says it is back
    finally:
        await h.close()


def test_build_dispatcher_trusts_offline_statuses_on_one_broker_only(tmp_path: Path) -> None:
    h = Harness(tmp_path, broker=None)
    try:
        one = build_dispatcher(h.app, parse_broker_url("mqtt://127.0.0.1:1"))
        three = build_dispatcher(h.app, parse_broker_url("mqtt://127.0.0.1:1,mqtt://127.0.0.1:2,mqtt://127.0.0.1:3"))
        assert one.offline_stops_resends and not three.offline_stops_resends
    finally:
        h.app.close()
