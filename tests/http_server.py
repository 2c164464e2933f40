"""A real keng HTTP server on a loopback port, in a background thread, for tests that speak plain HTTP to it."""

from __future__ import annotations

import asyncio
import http.client
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from keng.adapters.signing import sign
from keng.runtime.http.app import create_app
from keng.runtime.http.services import Services


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


class Client:
    """A tiny synchronous HTTP client (one connection per request) for tests and hypothesis."""

    def __init__(self, port: int) -> None:
        self.port = port

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        token: str | None = None,
    ) -> Reply:
        hdrs = dict(headers or {})
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=hdrs)
            r = conn.getresponse()
            return Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        finally:
            conn.close()

    def json(self, method: str, path: str, data: Any = None, token: str | None = None) -> Reply:
        body = None if data is None else orjson.dumps(data)
        return self.request(method, path, body, {"Content-Type": "application/json"}, token)

    def signed(
        self,
        path: str,
        body: bytes,
        secret: str,
        message_id: str,
        *,
        timestamp: int | None = None,
        content_type: str = "application/json",
    ) -> Reply:
        ts = int(time.time()) if timestamp is None else timestamp
        return self.request(
            "POST",
            path,
            body,
            {
                "Content-Type": content_type,
                "webhook-id": message_id,
                "webhook-timestamp": str(ts),
                "webhook-signature": sign(secret, message_id, ts, body),
            },
        )


@contextmanager
def serve(services: Services) -> Iterator[Client]:
    """Run the app on 127.0.0.1:<free port> until the block ends."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def start() -> None:
        runner = web.AppRunner(create_app(services))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        holder["runner"] = runner
        holder["port"] = runner.addresses[0][1]
        ready.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(start()), loop.run_forever()), daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("test server did not start")
    try:
        yield Client(holder["port"])
    finally:
        asyncio.run_coroutine_threadsafe(holder["runner"].cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
