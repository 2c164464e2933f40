"""Shared fixtures: a fresh event store on SQLite (a file) and on PostgreSQL (a fresh schema on a real server).

PostgreSQL comes from KENG_TEST_POSTGRES (default postgres://postgres@127.0.0.1:5432/test). Without a server the
PostgreSQL tests are skipped with the reason, except in CI (CI=true), where a missing server fails them.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from keng.adapters.mqtt.topics import DEFAULT_ROOT
from keng.adapters.store.app import Keng
from keng.adapters.store.config import locate_store
from keng.adapters.tts.render import Renderer
from tests.cluster import NatsCluster, nats_server_binary
from tests.contract import Taps
from tests.integration.conftest import Mosquitto, no_broker
from tests.servers import TempPostgres, postgres_problem

POSTGRES_URL = os.environ.get("KENG_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _postgres_problem() -> str | None:
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install '.[postgres]')"
    env = locate_store(POSTGRES_URL, Path(".")).env
    try:
        with psycopg.connect(
            dbname=env["POSTGRES_DBNAME"],
            host=env["POSTGRES_HOST"],
            port=int(env["POSTGRES_PORT"]),
            user=env["POSTGRES_USER"],
            password=env["POSTGRES_PASSWORD"] or None,
            connect_timeout=3,
        ):
            return None
    except Exception as e:  # any failure to connect means "no server here"
        return f"no PostgreSQL server at {POSTGRES_URL} ({type(e).__name__}: {str(e).strip()[:120]})"


_PG_PROBLEM: list[str | None] = []


def require_postgres() -> None:
    """Skip (locally) or fail (in CI) when no PostgreSQL server is reachable."""
    if not _PG_PROBLEM:
        _PG_PROBLEM.append(_postgres_problem())
    problem = _PG_PROBLEM[0]
    if problem:
        if IN_CI:
            pytest.fail(f"CI=true but {problem}")
        pytest.skip(problem)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL store URL with a fresh schema, dropped afterwards."""
    require_postgres()
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    env = locate_store(POSTGRES_URL, Path(".")).env
    params: dict[str, Any] = {
        "dbname": env["POSTGRES_DBNAME"],
        "host": env["POSTGRES_HOST"],
        "port": int(env["POSTGRES_PORT"]),
        "user": env["POSTGRES_USER"],
        "password": env["POSTGRES_PASSWORD"] or None,
        "autocommit": True,
    }
    with psycopg.connect(**params) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield f"{POSTGRES_URL}?schema={schema}"
    with psycopg.connect(**params) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def temp_postgres() -> Iterator[TempPostgres]:
    """A PostgreSQL server of the test's own (tests/servers.py), to stop, crash and restart at will; removed at the
    end. Without PostgreSQL's server binaries it is skipped with the reason, except in CI."""
    problem = postgres_problem()
    if problem:
        if IN_CI:
            pytest.fail(f"CI=true but {problem}")
        pytest.skip(problem)
    server = TempPostgres()
    try:
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on both stores: an SQLite file URL, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'keng.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def make_app(store_url: str, tmp_path: Path) -> Iterator[Callable[..., Keng]]:
    """Factory for applications on the parametrised store (each closed at the end)."""
    apps: list[Keng] = []

    def factory(clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Keng:
        app = Keng(env=locate_store(store_url, tmp_path).env, clock=clock)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        app.close()


@pytest.fixture
def sample_app(make_app: Callable[..., Keng]) -> Keng:
    """An application on the parametrised store with the sample district and staff loaded, as registered in 2022
    (district 021 and its 13 wards, before the 2025-07-01 reorganisation: an installation that has not run `keng area
    sync`), so that the tests of other features keep their ward codes; `keng init --sample` records the
    reorganisation too (tests/integration/test_cli_area.py)."""
    from keng.services.inventory import install_sample

    app = make_app()
    install_sample(app, reorganise=False)
    return app


# Hypothesis: CI runs the generated-input tests at their full size (>= 2,000 examples each); a local run is quicker.
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("ci", max_examples=2000, deadline=None)
_hypothesis_settings.register_profile("dev", max_examples=200, deadline=None)
_hypothesis_settings.load_profile("ci" if IN_CI else os.environ.get("HYPOTHESIS_PROFILE", "dev"))


_SESSION_UMASK = os.umask(0o022)
os.umask(_SESSION_UMASK)


@pytest.fixture(autouse=True)
def _umask_as_found() -> Iterator[None]:
    """`runtime.cli.main` sets the process umask to 077 (right for a `keng` process); tests that call it in-process
    must not leave it so for the tests after them (a broker that reads its ACL as another user, a test of modes)."""
    os.umask(_SESSION_UMASK)
    yield
    os.umask(_SESSION_UMASK)


@pytest.fixture
def renderer() -> Iterator[Renderer]:
    """The render stack a process builds once (runtime/bootstrap.py), fresh per test: its own engines and stores."""
    renderer = Renderer()
    yield renderer
    renderer.close()


@pytest.fixture
def contract_tap() -> Iterator[Taps]:
    """Checks every MQTT message of the test against docs/asyncapi.json (tests/contract.py): the broker fixtures
    (tests/integration/conftest.py) attach it, so every test on them is tapped; at teardown the test fails naming the
    first message that breaks the contract."""
    taps = Taps()
    yield taps
    taps.close()
    taps.check()


@pytest.fixture
def mosquitto(tmp_path: Path, contract_tap: Taps) -> Iterator[Mosquitto]:
    """A fresh mosquitto on a free port (integration and end-to-end tests), its traffic checked against the device
    protocol's contract."""
    if shutil.which("mosquitto") is None:
        no_broker("the mosquitto binary is not installed (apt-get install mosquitto)")
    broker = Mosquitto(tmp_path)
    try:
        broker.start()
    except RuntimeError as e:
        no_broker(str(e))
    contract_tap.attach(broker.address)
    yield broker
    broker.stop()


@pytest.fixture
async def nats_cluster(tmp_path: Path, contract_tap: Taps) -> AsyncIterator[NatsCluster]:
    """A fresh three-node NATS cluster (MQTT over clustered JetStream, tests/cluster.py) on free ports, its traffic
    checked against the device protocol's contract by a tap on the last node (tests that take nodes down take the
    others). Without nats-server it skips, except in CI (CI=true), where it fails."""
    binary = nats_server_binary()
    if binary is None:
        configured = os.environ.get("KENG_TEST_NATS_SERVER")
        no_broker(
            f"KENG_TEST_NATS_SERVER={configured} is not a file"
            if configured
            else "nats-server is not installed (apt-get install nats-server, or set KENG_TEST_NATS_SERVER)"
        )
    assert binary is not None
    cluster = NatsCluster(tmp_path / "nats", binary, excuse=contract_tap.excuse)
    try:
        try:
            await cluster.start()
        except RuntimeError as e:
            no_broker(str(e))
        # keng's root only: on NATS 2.9 `#` also matches the server's own `$JS/...` traffic (thousands of messages)
        await contract_tap.attach_async(cluster.node_address(len(cluster.nodes) - 1), topic=f"{DEFAULT_ROOT}/#")
        yield cluster
    finally:
        cluster.close()
