"""Health, readiness, metrics, the OpenAPI document and the device protocol's AsyncAPI document."""

from __future__ import annotations

from aiohttp import web

from keng.adapters.mqtt.asyncapi import served_bytes
from keng.runtime.http.metrics import CONTENT_TYPE
from keng.runtime.http.openapi import openapi_document
from keng.runtime.http.services import SERVICES


async def healthz(request: web.Request) -> web.Response:
    """The process is alive."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """The event store answers."""
    services = request.app[SERVICES]
    try:
        position = await services.run(services.app.max_position)
    except Exception as e:  # any store failure means "not ready"
        return web.json_response({"status": "unavailable", "detail": type(e).__name__}, status=503)
    return web.json_response({"status": "ready", "log_position": position})


async def metrics(request: web.Request) -> web.Response:
    """Prometheus exposition."""
    body = request.app[SERVICES].metrics.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document of this server."""
    return web.json_response(openapi_document())


async def asyncapi(request: web.Request) -> web.Response:
    """The AsyncAPI 3 document of the device protocol (MQTT), naming this installation's topic root."""
    root = request.app[SERVICES].settings.topic_root
    return web.Response(body=served_bytes(root), content_type="application/json")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.json", openapi)
    app.router.add_get("/asyncapi.json", asyncapi)
