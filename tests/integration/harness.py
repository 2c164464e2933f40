"""A small driver for dispatch tests: a store with the sample district, a simulated fleet, a dispatcher."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from keng.adapters.audio_links import AudioLinks
from keng.adapters.mqtt.broker import BrokerAddress
from keng.adapters.mqtt.link import CommandLink
from keng.adapters.mqtt.wire import MessageSource
from keng.adapters.store.app import Keng
from keng.adapters.store.config import locate_store
from keng.domain.dispatch import Dispatch
from keng.domain.programme import Programme, parse_slots
from keng.runtime.bootstrap import build_dispatcher
from keng.runtime.demo.simulator import Fleet, FleetOptions, fleet_specs
from keng.runtime.dispatch.dispatcher import Dispatcher
from keng.runtime.dispatch.live import RetryPolicy
from keng.services import broadcasts
from keng.services.inventory import install_sample

WARD = "00595"
ALWAYS_OPEN = Programme(default=parse_slots("00:00-24:00"), default_quiet=())


class Harness:
    def __init__(self, tmp: Path, broker: BrokerAddress | None, store_url: str | None = None) -> None:
        self.data_dir = tmp / "data"  # the dispatcher's files (assets, audio-link key)
        self.store_url = store_url or f"sqlite:///{tmp / 'keng.db'}"
        self.env = locate_store(self.store_url, tmp).env
        self.broker = broker
        self.app = Keng(env=self.env)
        install_sample(self.app, reorganise=False)  # the 2022 codes (before the reorganisation)
        self.fleet: Fleet | None = None
        self.dispatcher: Dispatcher | None = None
        self.task: asyncio.Task[None] | None = None

    async def start_fleet(self, **options: Any) -> Fleet:
        assert self.broker is not None, "a fleet needs a broker"
        self.fleet = Fleet(self.broker, fleet_specs(self.app, wards={WARD}), FleetOptions(**options))
        await self.fleet.start()
        return self.fleet

    async def start_dispatcher(
        self, *, link: CommandLink | None = None, inbound: MessageSource | None = None, **kw: Any
    ) -> Dispatcher:
        """A dispatcher on the real MQTT links to the harness's broker, or on the links given (tests/fakes.py)."""
        kw.setdefault("programme", ALWAYS_OPEN)
        kw.setdefault("assets_dir", self.data_dir / "assets")
        kw.setdefault("sign_audio", AudioLinks.in_data_dir(self.data_dir).query)  # devices get signed links, as served
        kw.setdefault("retry", RetryPolicy(first_s=1.0, cap_s=2.0))
        if link is not None and inbound is not None:
            self.dispatcher = Dispatcher(Keng(env=self.env), link=link, inbound=inbound, **kw)
        else:
            assert self.broker is not None, "a dispatcher needs a broker or links"
            self.dispatcher = build_dispatcher(Keng(env=self.env), self.broker, **kw)
        self.task = asyncio.create_task(self.dispatcher.run())
        await asyncio.wait_for(self.dispatcher.ready.wait(), 20)
        return self.dispatcher

    async def stop_dispatcher(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None

    def broadcast(self, priority: str = "emergency", *, expires_in_s: float | None = None, **kw: Any) -> UUID:
        if expires_in_s is not None:
            kw["expires_at"] = datetime.now(UTC) + timedelta(seconds=expires_in_s)
        kw.setdefault("target_areas", [WARD])
        bid = broadcasts.draft(
            self.app,
            by="lan.nguyen",
            title=f"Thông báo {priority}",
            text="Đề nghị bà con chú ý theo dõi thông báo.",
            priority=priority,
            **kw,
        )
        broadcasts.submit(self.app, bid, by="lan.nguyen")
        broadcasts.approve(self.app, bid, by="hung.tran")
        return bid

    def dispatch_of(self, bid: UUID) -> Dispatch | None:
        b = self.app.broadcast(bid)
        return self.app.repository.get(b.dispatches[0]) if b.dispatches else None

    async def until(self, predicate: Callable[[], bool], timeout: float = 20.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {predicate}")
            await asyncio.sleep(0.05)

    def closed(self, bid: UUID) -> bool:
        d = self.dispatch_of(bid)
        return d is not None and d.closed

    def events(self, kind: type) -> list[Any]:
        return [e for _, e in self.app.read_events() if isinstance(e, kind)]

    async def close(self) -> None:
        await self.stop_dispatcher()
        if self.fleet is not None:
            await self.fleet.stop()
        self.app.close()
