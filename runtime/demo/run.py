"""`keng demo`: the whole path on embedded defaults, printed as a Vietnamese-first timeline.

SQLite in a temporary directory, the embedded broker, a simulated fleet of the sample district (some devices start
offline and come back), then an emergency broadcast drafted, approved and dispatched, with its progress per ward (a
live table on a terminal, plain lines otherwise: runtime/demo/progress.py) and the closing summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from keng.adapters.mqtt.broker import EmbeddedBroker
from keng.domain.programme import Programme, parse_slots
from keng.domain.records import DispatchSummary
from keng.domain.values import Priority
from keng.projections.catalog import Catalog
from keng.runtime.bootstrap import build_dispatcher, delivery_options, open_app, topics_of
from keng.runtime.config import Settings
from keng.runtime.demo.progress import progress_for, ward_rows
from keng.runtime.demo.simulator import Fleet, FleetOptions, fleet_specs
from keng.runtime.dispatch.live import LiveDispatch
from keng.services import broadcasts
from keng.services.inventory import install_sample

TEXT = (
    "Khẩn cấp: mực nước sông Hồng đang lên nhanh. Đề nghị bà con khu vực ven đê chuẩn bị di chuyển đến nơi an toàn "
    "theo hướng dẫn của tổ dân phố."
)


class Timeline:
    def __init__(self, tz: tzinfo) -> None:
        self.tz = tz

    def say(self, vi: str, en: str = "") -> None:
        stamp = datetime.now(self.tz).strftime("%H:%M:%S.%f")[:-3]
        print(f"{stamp}  {vi}" + (f" — {en}" if en else ""), flush=True)


async def run_demo(settings: Settings, *, offline_rate: float) -> int:
    """Run the demo; returns the exit code (0 when every online device played the alert)."""
    line = Timeline(settings.display_tz)
    data = Path(tempfile.mkdtemp(prefix="keng-demo-"))
    settings = replace(settings, data_dir=data, store_url=None)  # a store of its own (and always an embedded broker)
    app = open_app(settings)
    install_sample(app)
    wards = {a.code: a.name for a in Catalog().fold(app.read_events()).areas(app.clock()) if a.level == "ward"}
    line.say(f"Kho dữ liệu tạm (temporary store) {data / 'keng.db'}; địa bàn mẫu quận Bắc Từ Liêm, {len(wards)} phường")
    broker = EmbeddedBroker()  # any free port, whatever KENG_BROKER_LISTEN says: a demo never collides
    address = await broker.start()
    line.say(f"Broker MQTT nhúng (embedded broker) {address.display}")
    specs = fleet_specs(app)
    options = FleetOptions(
        offline_rate=offline_rate, comeback_s=(3.0, 6.0), play_scale=0.05, topic_root=settings.topic_root
    )
    fleet = Fleet(address, specs, options)
    online = await fleet.start()
    line.say(f"Thiết bị mô phỏng trực tuyến (simulated devices online): {online}/{len(specs)}", "others come back soon")
    closed = asyncio.Event()
    summary: dict[str, Any] = {}  # the closing DispatchSummary
    board = progress_for(sys.stdout)

    def progress(live: LiveDispatch) -> None:
        board.update(ward_rows(live, wards))

    def done(live: LiveDispatch, result: DispatchSummary) -> None:
        summary.update(result)
        closed.set()

    dispatcher = build_dispatcher(
        open_app(settings),
        address,
        topics=topics_of(settings),
        programme=Programme(default=parse_slots("00:00-24:00"), default_quiet=()),
        settle_s=10.0,
        on_progress=progress,
        on_closed=done,
        **delivery_options(settings),  # links signed as `keng serve` signs them, files under the demo's data dir
    )
    task = asyncio.create_task(dispatcher.run())
    await dispatcher.ready.wait()
    await dispatcher.content_ready()  # the voice is loaded: the alert's audio is rendered on the dispatch path
    line.say("Bộ điều phối sẵn sàng (dispatcher following the event log)")
    bid = broadcasts.draft(
        app,
        by="lan.nguyen",
        title="Cảnh báo lũ sông Hồng",
        text=TEXT,
        priority=Priority.EMERGENCY,
        target_areas=["021"],
    )
    line.say(f"Nguyễn Thị Lan soạn bản tin KHẨN CẤP {str(bid)[:8]}", "emergency drafted for the whole district")
    broadcasts.submit(app, bid, by="lan.nguyen")
    line.say("Trình duyệt (submitted for approval)")
    started = time.monotonic()
    broadcasts.approve(app, bid, by="hung.tran")
    line.say("Trần Văn Hùng duyệt (approved) — phát ngay, phát 3 lần, âm lượng 100%", "released at once")
    try:
        await asyncio.wait_for(closed.wait(), 60)
    finally:
        board.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await fleet.stop()
        await broker.stop()
    lat = summary["latency_ms"][Priority.EMERGENCY]
    line.say(f"Đóng đợt phát (dispatch closed: {summary['outcome']}) sau {time.monotonic() - started:.1f} s")
    print(
        f"\nTổng kết (summary): mục tiêu {summary['targeted']} · trực tuyến {summary['online']} · đã nhận "
        f"{summary['received']} · đã phát {summary['played']} · lỗi {summary['failed']} · không liên lạc được "
        f"{summary['unreachable']} · gửi lại {summary['retries']} lần\n"
        f"Độ trễ từ lúc duyệt đến lúc thiết bị nhận (approval -> received): p50 {lat['p50']} ms · "
        f"p95 {lat['p95']} ms · p99 {lat['p99']} ms",
        flush=True,
    )
    app.close()
    return 0 if summary["played"] + summary["failed"] >= summary["online"] else 1
