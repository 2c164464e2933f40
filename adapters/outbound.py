"""Guarded outbound HTTP: the one way keng fetches a URL that a message carries (CAP resource URIs) or that an admin
configured (delivery-report URLs).

- Only http and https, URLs up to `max_url_length` characters.
- The host is resolved once, every address it resolves to must pass `domain.outbound.address_allowed` (unless the
  integration allowlists the host), and the connection goes to those very addresses: the connector's resolver knows
  only the vetted answers, so a second DNS answer (rebinding) is never asked for. TLS and the Host header keep the
  URL's name, so certificates are checked against it.
- Redirects (GET only) are followed by hand, at most `max_redirects`, each target vetted by the same rule.
- The body is read up to `max_bytes`; the whole exchange, redirects and DNS included, within `timeout_s`.
- A failure is a `FetchRefused` whose reason is one of a few fixed texts: never the socket error, the port, or
  anything else that would tell a sender which internal ports are open.

aiohttp offers no policy hook for where it connects, hence this module; the custom resolver is its documented
extension point (`TCPConnector(resolver=...)`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass, field

import aiohttp
import structlog
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from keng.domain.errors import InvalidValue
from keng.domain.outbound import address_allowed, check_fetch_host

ADDRESS_NOT_ALLOWED = "address not allowed"
UNREACHABLE = "unreachable"
TOO_LARGE = "too large"
TIMED_OUT = "timed out"
BAD_STATUS = "bad status"
URL_NOT_ALLOWED = "URL not allowed"
TOO_MANY_REDIRECTS = "too many redirects"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
log = structlog.get_logger(__name__)


class FetchRefused(Exception):
    """The fetch was refused or failed; `reason` is one of this module's fixed texts."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class FetchPolicy:
    """Limits of one fetch; `allowed_hosts` are the integration's allowlisted host names (normalised)."""

    allowed_hosts: frozenset[str] = frozenset()
    max_bytes: int = 20 * 1024 * 1024
    timeout_s: float = 20.0
    max_redirects: int = 3
    max_url_length: int = 2048


@dataclass(frozen=True)
class Fetched:
    status: int
    body: bytes


@dataclass
class PinnedResolver(AbstractResolver):
    """Answers only for hosts vetted during this fetch, with the addresses vetted; every host is looked up once."""

    upstream: AbstractResolver
    pins: dict[str, list[ResolveResult]] = field(default_factory=dict)

    async def vet(self, host: str, port: int, allowed_hosts: frozenset[str]) -> None:
        """Resolve `host` (once per fetch) and refuse it unless every address is allowed or the host allowlisted."""
        allowlisted = _normalised(host) in allowed_hosts
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:  # aiohttp connects to a literal without asking the resolver
            if not (allowlisted or address_allowed(literal)):
                raise FetchRefused(ADDRESS_NOT_ALLOWED)
            return
        if host not in self.pins:
            found = await self.upstream.resolve(host, port, family=socket.AF_UNSPEC)
            if not found:
                raise FetchRefused(UNREACHABLE)
            self.pins[host] = found
        if not allowlisted and not all(address_allowed(ipaddress.ip_address(r["host"])) for r in self.pins[host]):
            raise FetchRefused(ADDRESS_NOT_ALLOWED)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host not in self.pins:
            raise OSError("host was not vetted")
        return [
            ResolveResult(
                hostname=r["hostname"],
                host=r["host"],
                port=port,
                family=r["family"],
                proto=r["proto"],
                flags=r["flags"],
            )
            for r in self.pins[host]
        ]

    async def close(self) -> None:
        await self.upstream.close()


def _normalised(host: str) -> str:
    try:
        return check_fetch_host(host)
    except InvalidValue:
        return ""


def _parse(url: str, policy: FetchPolicy) -> URL:
    if len(url) > policy.max_url_length:
        raise FetchRefused(URL_NOT_ALLOWED)
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        raise FetchRefused(URL_NOT_ALLOWED) from None
    if parsed.scheme not in ("http", "https") or not parsed.raw_host or not parsed.is_absolute():
        raise FetchRefused(URL_NOT_ALLOWED)
    return parsed


async def _read(reply: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    if (reply.content_length or 0) > max_bytes:
        raise FetchRefused(TOO_LARGE)
    chunks: list[bytes] = []
    size = 0
    async for chunk in reply.content.iter_chunked(65536):
        size += len(chunk)
        if size > max_bytes:
            raise FetchRefused(TOO_LARGE)
        chunks.append(chunk)
    return b"".join(chunks)


async def fetch(
    url: str,
    policy: FetchPolicy,
    *,
    method: str = "GET",
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
    read_body: bool = True,
    resolver: AbstractResolver | None = None,
) -> Fetched:
    """One guarded request (GET follows redirects; other methods do not). Raises FetchRefused."""
    target = _parse(url, policy)
    pinned = PinnedResolver(resolver or aiohttp.ThreadedResolver())
    connector = aiohttp.TCPConnector(resolver=pinned, use_dns_cache=False)
    try:
        async with (
            asyncio.timeout(policy.timeout_s),
            aiohttp.ClientSession(connector=connector, trust_env=False) as session,
        ):
            for _ in range(policy.max_redirects + 1):
                await pinned.vet(target.raw_host or "", target.port or 0, policy.allowed_hosts)
                async with session.request(method, target, data=data, headers=headers, allow_redirects=False) as reply:
                    location = reply.headers.get("Location")
                    if method == "GET" and reply.status in _REDIRECTS and location:
                        target = _parse(str(target.join(URL(location))), policy)
                        continue
                    return Fetched(reply.status, await _read(reply, policy.max_bytes) if read_body else b"")
            raise FetchRefused(TOO_MANY_REDIRECTS)
    except FetchRefused as e:
        _refused(target, e.reason)
        raise
    except TimeoutError:
        _refused(target, TIMED_OUT)
        raise FetchRefused(TIMED_OUT) from None
    except (aiohttp.ClientError, OSError, ValueError):
        _refused(target, UNREACHABLE)
        raise FetchRefused(UNREACHABLE) from None


async def post_json(url: str, body: bytes, headers: dict[str, str], policy: FetchPolicy) -> tuple[bool, int | str]:
    """POST a signed JSON message (a webhook keng sends): (delivered, the 2xx status) or (False, why not). A status
    from a vetted destination tells nothing about internal ports; it helps the admin."""
    try:
        reply = await fetch(url, policy, method="POST", data=body, headers=headers, read_body=False)
    except FetchRefused as e:
        return False, e.reason
    return 200 <= reply.status < 300, reply.status if reply.status < 300 else f"HTTP {reply.status}"


def _refused(target: URL, reason: str) -> None:
    # The host only: it came with the message, and an admin needs it to decide on an allowlist entry.
    log.info("outbound.refused", host=target.raw_host, reason=reason)
