"""Where events are stored: an SQLite file in the data directory (default) or a PostgreSQL database.

`KENG_STORE` (or `--store`) takes `postgres://user:password@host:port/dbname[?schema=NAME]` or
`sqlite:///absolute/path.db`; left empty, the store is `<data dir>/keng.db`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

SQLITE_MODULE = "keng.adapters.store.sqlite:KengSQLiteFactory"
POSTGRES_MODULE = "keng.adapters.store.postgres:KengPostgresFactory"
PLAIN_RECORDERS = {
    "sqlite": "eventsourcing.sqlite:SQLiteApplicationRecorder",
    "postgres": "eventsourcing.postgres:PostgresApplicationRecorder",
}


class StoreConfigError(ValueError):
    """The store location could not be understood."""


@dataclass(frozen=True)
class StoreLocation:
    """A parsed store location and the eventsourcing environment that selects it."""

    kind: str  # "sqlite" or "postgres"
    env: dict[str, str]
    display: str  # for logs and messages: never includes a password


def locate_store(url: str | None, data_dir: Path) -> StoreLocation:
    """Turn a store URL (or nothing) into the eventsourcing environment for it."""
    if not url:
        path = data_dir / "keng.db"
        return StoreLocation("sqlite", {"PERSISTENCE_MODULE": SQLITE_MODULE, "SQLITE_DBNAME": str(path)}, str(path))
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        raw = unquote(parts.path)
        if not raw or raw == "/":
            raise StoreConfigError(f"store URL {url!r} names no database file (use sqlite:///path/keng.db)")
        return StoreLocation("sqlite", {"PERSISTENCE_MODULE": SQLITE_MODULE, "SQLITE_DBNAME": raw}, raw)
    if parts.scheme in ("postgres", "postgresql"):
        dbname = parts.path.lstrip("/")
        if not dbname:
            raise StoreConfigError(f"store URL {url!r} names no database (postgres://user@host:5432/dbname)")
        env = {
            "PERSISTENCE_MODULE": POSTGRES_MODULE,
            "POSTGRES_DBNAME": unquote(dbname),
            "POSTGRES_HOST": parts.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(parts.port or 5432),
            "POSTGRES_USER": unquote(parts.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parts.password or ""),
            "POSTGRES_CONNECT_TIMEOUT": "5",
        }
        schema = parse_qs(parts.query).get("schema", [""])[0]
        if schema:
            if not schema.replace("_", "").isalnum():
                raise StoreConfigError(f"schema {schema!r} must be letters, digits and '_'")
            env["POSTGRES_SCHEMA"] = schema
        shown = f"postgres://{env['POSTGRES_USER']}@{env['POSTGRES_HOST']}:{env['POSTGRES_PORT']}/{dbname}"
        return StoreLocation("postgres", env, shown + (f"?schema={schema}" if schema else ""))
    raise StoreConfigError(f"unsupported store URL scheme {parts.scheme!r}: use postgres://... or sqlite:///...")


def without_chain(location: StoreLocation) -> dict[str, str]:
    """The environment for writing without the audit chain (the library's own recorder): a benchmark's baseline only.
    Events written so are linked by the next chained write or `keng audit seal`; until then they are unsealed."""
    return {**location.env, "APPLICATION_RECORDER_TOPIC": PLAIN_RECORDERS[location.kind]}


def connect_kwargs(location: StoreLocation) -> dict[str, str | int | None]:
    """`psycopg.connect` keyword arguments for a PostgreSQL location (tools and tests that speak SQL to the server)."""
    env = location.env
    return {
        "dbname": env["POSTGRES_DBNAME"],
        "host": env["POSTGRES_HOST"],
        "port": int(env["POSTGRES_PORT"]),
        "user": env["POSTGRES_USER"],
        "password": env["POSTGRES_PASSWORD"] or None,
    }
