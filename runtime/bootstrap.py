"""The composition root: the one place that turns `Settings` into wired parts: the application (the event store), the
dispatcher with its MQTT links, the workers (renderer, reporter, sealer, read models) and the HTTP app.

`keng serve`, `keng dispatch run`, `keng demo` and the other commands build through these functions, and so do tests
that need a real part; nothing here runs at import time. The service stack (aiohttp, aiomqtt, prometheus, the audio
libraries) is imported inside the function that builds it, so that a command that only opens the store
(`keng broadcast list`) does not load it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import structlog

from keng.adapters.private_files import loose_paths, touch_private
from keng.adapters.store.app import Clock, Keng, utc_now
from keng.adapters.store.config import locate_store, without_chain
from keng.adapters.store.sqlite import SYNCHRONOUS_FULL, DurabilityError, KengSQLiteFactory
from keng.domain.content import ContentLimits
from keng.domain.errors import InvalidValue
from keng.domain.programme import SAMPLE_QUIET, SAMPLE_SLOTS, Programme, parse_quiet, parse_slots
from keng.domain.standing_orders import StandingOrder, parse_orders
from keng.runtime.config import Settings

if TYPE_CHECKING:
    from aiohttp import web

    from keng.adapters.mqtt.broker import BrokerAddress
    from keng.adapters.mqtt.link import MqttLink
    from keng.adapters.mqtt.topics import Topics
    from keng.adapters.mqtt.wire import WireLink
    from keng.adapters.tts.render import RenderConfig, Renderer
    from keng.runtime.dispatch.dispatcher import Dispatcher
    from keng.runtime.dispatch.partitions import Partitions
    from keng.runtime.http.metrics import Metrics
    from keng.runtime.http.services import Services
    from keng.runtime.workers.pusher import Pusher

log = structlog.get_logger(__name__)
DISPATCHER_CLIENT_ID = "keng-dispatcher"  # the prefix of a dispatcher's client id (client_id_for)
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8080"


class StartupError(RuntimeError):
    """keng cannot start with these settings; the message says why."""


# -- the application ---------------------------------------------------------------------------------------------


def limits_of(settings: Settings) -> ContentLimits:
    """The content bounds the settings ask for."""
    return ContentLimits(max_lifetime=timedelta(days=settings.max_expiry_days))


def open_app(settings: Settings, *, clock: Clock = utc_now, create: bool = True) -> Keng:
    """Open the event store named by the settings and check its durability settings."""
    location = locate_store(settings.store_url, settings.data_dir)
    if location.kind == "sqlite":
        db = settings.data_dir / "keng.db" if not settings.store_url else None
        if db is not None:
            if not create and not db.exists():
                raise StartupError(f"no keng data in {settings.data_dir}: run `keng init` (or `keng init --sample`)")
            touch_private(db)  # 0600 before SQLite opens it, so its -wal and -shm files are 0600 too
    try:
        env = location.env if settings.audit_chain else without_chain(location)
        app = Keng(env=env, clock=clock, limits=limits_of(settings))
    except Exception as e:  # the library wraps driver errors in several types; all mean "cannot open"
        raise StartupError(f"cannot open the event store at {location.display}: {e}") from e
    factory = app.factory
    if isinstance(factory, KengSQLiteFactory) and factory.synchronous_level() != SYNCHRONOUS_FULL:
        raise DurabilityError(f"{location.display}: PRAGMA synchronous is not FULL")
    return app


def warn_loose_permissions(data_dir: Path) -> int:
    """Log a warning for each directory or file in the data directory that group or others may use (an installation
    made before keng kept it private); returns how many. `keng doctor --fix` tightens them."""
    if not data_dir.is_dir():
        return 0
    loose = loose_paths(data_dir)
    for item in loose:
        log.warning("data_dir.permissions_too_wide", **item.as_dict())
    if loose:
        log.warning("data_dir.not_private", data_dir=str(data_dir), paths=len(loose), fix="keng doctor --fix")
    return len(loose)


def load_standing_orders(settings: Settings) -> list[StandingOrder]:
    """Standing orders from `$KENG_STANDING_ORDERS` or `<data dir>/standing-orders.json` (none when absent)."""
    path = settings.standing_orders_path
    if not path.exists():
        return []
    try:
        data = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as e:
        raise InvalidValue(f"{path}: malformed JSON: {e}") from None
    orders = parse_orders(data)
    log.info("standing_orders.loaded", path=str(path), rules=[o.name for o in orders])
    return orders


# -- rendering ---------------------------------------------------------------------------------------------------


def build_renderer() -> Renderer:
    """The process's one render stack (engines load on first use); close it when the process is done rendering."""
    from keng.adapters.tts.render import Renderer

    return Renderer()


def render_config(settings: Settings, engine: str | None = None, voice: str | None = None) -> RenderConfig:
    """What to render with: the given engine or `KENG_TTS_ENGINE`, the coqui model of `KENG_TTS_MODEL` /
    `KENG_TTS_CONFIG`, assets under `<data dir>/assets`."""
    from keng.adapters.boards import BoardProfile
    from keng.adapters.tts.base import TTSConfig
    from keng.adapters.tts.render import RenderConfig

    engine = engine or settings.tts_engine
    tts = TTSConfig(
        engine=engine,
        voice=voice or ("vi" if engine == "espeak" else ""),
        coqui_model=settings.tts_model,
        coqui_config=settings.tts_config,
    )
    return RenderConfig(store_root=settings.data_dir / "assets", tts=tts, board=BoardProfile())


# -- delivery ----------------------------------------------------------------------------------------------------


def broker_of(settings: Settings, default: str | None = None) -> BrokerAddress | None:
    """The broker of `--broker` / `KENG_MQTT`, else `default`; None asks for an embedded broker. An `mqtts://` broker
    takes KENG_MQTT_CA / KENG_MQTT_CERT / KENG_MQTT_KEY where its URL names no file, and its TLS context is made
    here, so that a CA file that cannot be read is a BrokerConfigError before anything starts."""
    from keng.adapters.mqtt.broker import parse_broker_url

    url = settings.broker_url or default
    if not url:
        return None
    address = parse_broker_url(url).with_tls_files(settings.mqtt_ca, settings.mqtt_cert, settings.mqtt_key)
    address.ssl_context()
    return address


def topics_of(settings: Settings) -> Topics:
    """This installation's MQTT topics (under KENG_TOPIC_ROOT)."""
    from keng.adapters.mqtt.topics import Topics

    return Topics(settings.topic_root)


def client_id_for(role: str = DISPATCHER_CLIENT_ID) -> str:
    """A client id of this process: `<role>-<host name>-<pid>-<4 random hex>`, so that two processes (two
    dispatchers, a restarted one, another installation's) never share one on a broker, which would have each
    disconnect the other; it also names the dispatcher's ack-barrier topic, so it is kept to one topic level."""
    host = "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "-" for c in socket.gethostname())[:32]
    return f"{role}-{host or 'host'}-{os.getpid()}-{secrets.token_hex(2)}"


@contextlib.asynccontextmanager
async def broker_for(settings: Settings) -> AsyncIterator[tuple[BrokerAddress, bool]]:
    """The configured broker, or an embedded one listening on KENG_BROKER_LISTEN (`settings.broker_listen`; port 0:
    any free port) for the duration; yields the address and whether it is embedded."""
    from keng.adapters.mqtt.broker import EmbeddedBroker

    configured = broker_of(settings)
    if configured is not None:
        yield configured, False
        return
    embedded = EmbeddedBroker(*settings.broker_listen)
    address = await embedded.start()
    try:
        yield address, True
    finally:
        await embedded.stop()


def programme_of(settings: Settings) -> Programme:
    """The programme of wards without settings of their own (`keng programme slots` sets a ward's, as events): the
    sample's slots and quiet hours, or `--slots` (then no quiet hours unless `--quiet` names them)."""
    quiet = parse_quiet(settings.quiet) if settings.quiet is not None else () if settings.slots else SAMPLE_QUIET
    return Programme(default=parse_slots(settings.slots) if settings.slots else SAMPLE_SLOTS, default_quiet=quiet)


def mqtt_links(
    broker: BrokerAddress, client_id: str | None = None, topics: Topics | None = None
) -> tuple[MqttLink, WireLink]:
    """The dispatcher's real links: commands out through aiomqtt on MQTT 5, acks and statuses in through the lean
    reader at QoS 0 (the Dispatcher's docstring says why); `client_id` (default: one of this process's own) names the
    outbound link, `<client_id>-intake` the reader, which subscribes under `topics`' root."""
    from keng.adapters.mqtt.link import MqttLink
    from keng.adapters.mqtt.topics import DEFAULT_TOPICS
    from keng.adapters.mqtt.wire import WireLink

    client_id = client_id or client_id_for()
    topics = topics or DEFAULT_TOPICS
    inbound = WireLink(
        broker,
        client_id=f"{client_id}-intake",
        subscriptions=(topics.ack_subscription, topics.status_subscription),
        announce=True,
        subscribe_qos=0,
    )
    return MqttLink(broker, client_id=client_id), inbound


def partitions_of(settings: Settings, app: Keng) -> Partitions:
    """This worker's share of the dispatch work: slots leased in the store's database, so that any number of workers
    (`keng serve`, `keng dispatch run`) on one store share it and take over from one that stops
    (runtime/dispatch/partitions.py)."""
    from keng.adapters.store.leases import Leases
    from keng.runtime.dispatch.partitions import Partitions, worker_name

    leases = Leases.of(app, worker=worker_name(), slots=settings.partitions, ttl_s=settings.lease_ttl_s)
    return Partitions(leases)


def build_dispatcher(
    app: Keng, broker: BrokerAddress, *, client_id: str | None = None, topics: Topics | None = None, **options: Any
) -> Dispatcher:
    """A dispatcher on the real MQTT links to `broker` under `topics` (default `keng/v1`), with a client id of this
    process's own unless one is given; `options` are the Dispatcher's own (programme, settle_s ...). On a broker
    cluster (several nodes) an offline status does not hold resends back (Dispatcher `offline_stops_resends`)."""
    from keng.adapters.mqtt.topics import DEFAULT_TOPICS
    from keng.runtime.dispatch.dispatcher import Dispatcher

    client_id = client_id or client_id_for()
    topics = topics or DEFAULT_TOPICS
    link, inbound = mqtt_links(broker, client_id, topics)
    options.setdefault("offline_stops_resends", not broker.others)  # a cluster's statuses can arrive out of order
    return Dispatcher(app, link=link, inbound=inbound, client_id=client_id, topics=topics, **options)


# -- the service -------------------------------------------------------------------------------------------------


def public_url_of(settings: Settings) -> str:
    """The base URL devices reach the service at (`--public-url`, else where `keng serve` listens by default)."""
    return settings.public_url or DEFAULT_PUBLIC_URL


def delivery_options(settings: Settings) -> dict[str, Any]:
    """What the dispatcher's commands point devices at, and where it keeps the files they fetch: `<public URL>/audio`
    (and `/board` beside it), links signed with the data directory's key, files under `<data dir>/assets` (where
    the HTTP service serves them from)."""
    from keng.adapters.audio_links import AudioLinks

    return {
        "audio_base": f"{public_url_of(settings)}/audio",
        "sign_audio": AudioLinks.in_data_dir(settings.data_dir).query,
        "assets_dir": settings.data_dir / "assets",
    }


def build_services(settings: Settings, app: Keng) -> Services:
    """What the HTTP layer needs, from the settings (limits, standing orders, ratify window, public URL)."""
    from keng.adapters.secrets import SecretStore
    from keng.runtime.http.services import Services
    from keng.runtime.workers.readmodels import LiveReadModels

    return Services(
        app=app,
        secrets=SecretStore(settings.data_dir),
        settings=settings,
        max_body_bytes=settings.max_body_bytes,
        standing_orders=load_standing_orders(settings),
        ratify_within=settings.ratify_within,
        public_url=public_url_of(settings),
        reports=LiveReadModels(app),
    )


def build_pusher(settings: Settings, app: Keng, *, active: Callable[[], bool] = lambda: True) -> Pusher:
    """The push worker: bulletins to portals and the app, replies to feedback (runtime/workers/pusher.py)."""
    from keng.adapters.audio_links import AudioLinks
    from keng.adapters.secrets import SecretStore
    from keng.runtime.workers.pusher import Pusher

    links = AudioLinks.in_data_dir(settings.data_dir)
    base = f"{public_url_of(settings)}/audio"
    return Pusher(
        app,
        SecretStore(settings.data_dir),
        assets_dir=settings.data_dir / "assets",
        audio_url=lambda key, expires_at: f"{base}/{key}?{links.query(key, expires_at)}",
        active=active,
    )


def delivery_context(settings: Settings, metrics: Metrics) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context running the dispatcher (with an embedded broker when none is configured), the delivery
    reporter, the push worker and the render processes beside the HTTP service: started with it, cancelled and
    awaited on shutdown. The workers in this process share their own store connection; each render process has its
    own."""

    async def context(_: web.Application) -> AsyncIterator[None]:
        from keng.adapters.secrets import SecretStore
        from keng.runtime.dispatch.content import ItemContent
        from keng.runtime.dispatch.metrics import DispatcherCollector, observe_closed
        from keng.runtime.workers.render_pool import RenderPool
        from keng.runtime.workers.reporter import Reporter

        async with broker_for(settings) as (broker, embedded):
            store = open_app(settings, create=False)
            options = delivery_options(settings)
            # Nothing renders in this process: the render processes make every submitted broadcast's audio at a lower
            # priority, and the dispatcher's own render process (as in `keng dispatch run`) makes what is still
            # missing at release (an emergency approved before its audio), so it does not render ahead itself.
            dispatcher = build_dispatcher(
                store,
                broker,
                topics=topics_of(settings),
                programme=programme_of(settings),
                budgets=settings.latency_budgets,
                content=ItemContent(
                    options["assets_dir"], log_format=settings.log_format, log_level=settings.log_level
                ),
                prepare_ahead=False,
                **options,
                on_closed=lambda live, _summary: observe_closed(metrics, live),
                freeze_gc=True,
                partitions=(partitions := partitions_of(settings, store)),
            )
            collector = DispatcherCollector(dispatcher)
            metrics.registry.register(collector)
            # The render processes speak with the embedded voice, whatever KENG_TTS_ENGINE says (`keng render` uses
            # it): audio ready within milliseconds of submission, on any machine.
            renders = RenderPool(settings)
            tasks = [
                asyncio.create_task(dispatcher.run(), name="keng-dispatcher"),
                # one worker (the leader, slot 0's holder) sends the reports and pushes
                asyncio.create_task(
                    Reporter(store, SecretStore(settings.data_dir), active=lambda: partitions.leader).run(),
                    name="keng-reports",
                ),
                asyncio.create_task(
                    build_pusher(settings, store, active=lambda: partitions.leader).run(), name="keng-pushes"
                ),
            ]
            if renders.size:
                tasks.append(asyncio.create_task(renders.run(), name="keng-render-pool"))
            log.info(
                "dispatcher.started",
                broker=broker.display,
                embedded=embedded,
                client_id=dispatcher.client_id,
                topic_root=settings.topic_root,
                worker=partitions.worker,
            )
            try:
                yield
            finally:
                for task in tasks:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                metrics.registry.unregister(collector)
                store.close()

    return context


def build_http_app(settings: Settings, *, dispatcher: bool = True) -> tuple[web.Application, Keng]:
    """The HTTP service over the store of the settings, with the audit sealer and (unless another process dispatches)
    the delivery workers in its cleanup contexts; returns it and the application to close after it stopped."""
    from keng.runtime.http.app import create_app
    from keng.runtime.workers.readmodels import follower_context
    from keng.runtime.workers.sealer import sealer_context

    app = open_app(settings, create=False)
    services = build_services(settings, app)
    web_app = create_app(services)
    web_app.cleanup_ctx.insert(0, sealer_context(app, settings))  # first in, so its final checkpoint comes last
    web_app.cleanup_ctx.append(follower_context(services.read_models))  # PostgreSQL: fold as others write
    if dispatcher:
        web_app.cleanup_ctx.append(delivery_context(settings, services.metrics))
    return web_app, app
