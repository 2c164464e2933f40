"""The outbound guard over real loopback sockets: refused addresses get no connection at all, an allowlisted host is
fetched, redirects are vetted hop by hop, the host is resolved once (no rebinding), and every failure has a generic
reason that does not tell an open port from a closed one."""

from __future__ import annotations

import socket

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from keng.adapters.audio_upload import UploadRefused
from keng.adapters.outbound import (
    ADDRESS_NOT_ALLOWED,
    TIMED_OUT,
    TOO_LARGE,
    TOO_MANY_REDIRECTS,
    UNREACHABLE,
    URL_NOT_ALLOWED,
    FetchPolicy,
    FetchRefused,
    PinnedResolver,
    fetch,
)
from keng.adapters.recordings import fetch_recording
from tests.outbound_servers import Answer, closed_port, http_answers, not_http, quiet

LOCALHOST = FetchPolicy(allowed_hosts=frozenset({"localhost"}), timeout_s=5)
NONE_ALLOWED = FetchPolicy(timeout_s=5)


async def refused(url: str, policy: FetchPolicy = NONE_ALLOWED) -> str:
    with pytest.raises(FetchRefused) as caught:
        await fetch(url, policy)
    return str(caught.value)


async def test_loopback_in_any_spelling_is_refused_without_a_connection() -> None:
    with quiet() as listener:
        p = listener.port
        urls = [
            f"http://127.0.0.1:{p}/a.wav",
            f"http://localhost:{p}/a.wav",
            f"http://LocalHost:{p}/a.wav",
            f"http://[::1]:{p}/a.wav",
            f"http://[::ffff:127.0.0.1]:{p}/a.wav",
            f"http://0.0.0.0:{p}/a.wav",
            f"https://127.0.0.1:{p}/a.wav",
            f"http://2130706433:{p}/a.wav",
        ]
        reasons = {url: await refused(url) for url in urls}
        assert listener.connections() == 0
    assert set(reasons.values()) == {ADDRESS_NOT_ALLOWED}, reasons


async def test_an_allowlisted_host_is_fetched_and_its_redirects_are_vetted_hop_by_hop() -> None:
    with quiet() as other:
        answers = {
            "/a.wav": Answer(body=b"RIFF-audio"),
            "/hop": Answer(302, headers=(("Location", "/a.wav"),)),
            "/away": Answer(302, headers=(("Location", f"http://127.0.0.1:{other.port}/a.wav"),)),
            "/loop": Answer(302, headers=(("Location", "/loop"),)),
            "/ftp": Answer(302, headers=(("Location", "ftp://localhost/a.wav"),)),
        }
        with http_answers(answers) as (port, requested):
            base = f"http://localhost:{port}"
            assert (await fetch(f"{base}/a.wav", LOCALHOST)).body == b"RIFF-audio"
            assert (await fetch(f"{base}/hop", LOCALHOST)).body == b"RIFF-audio"
            # Same server, another name: 127.0.0.1 is not on the allowlist even though localhost is.
            assert await refused(f"{base}/away", LOCALHOST) == ADDRESS_NOT_ALLOWED
            assert await refused(f"http://127.0.0.1:{port}/a.wav", LOCALHOST) == ADDRESS_NOT_ALLOWED
            assert await refused(f"{base}/loop", LOCALHOST) == TOO_MANY_REDIRECTS
            assert await refused(f"{base}/ftp", LOCALHOST) == URL_NOT_ALLOWED
        assert other.connections() == 0
    assert requested[:4] == ["/a.wav", "/hop", "/a.wav", "/away"]
    assert requested.count("/loop") == LOCALHOST.max_redirects + 1


async def test_a_closed_port_and_an_open_one_get_the_same_reason() -> None:
    closed = closed_port()
    with quiet() as silent, not_http() as banner:
        # Not allowlisted: nothing is even tried.
        assert {await refused(f"http://127.0.0.1:{port}/") for port in (closed, silent.port, banner)} == {
            ADDRESS_NOT_ALLOWED
        }
        assert silent.connections() == 0
        # Allowlisted: a refused connection and a port that speaks something else are both just unreachable.
        loopback = FetchPolicy(allowed_hosts=frozenset({"127.0.0.1"}), timeout_s=5)
        assert {await refused(f"http://127.0.0.1:{port}/", loopback) for port in (closed, banner)} == {UNREACHABLE}
        nxdomain = FetchPolicy(allowed_hosts=frozenset({"gone.test"}), timeout_s=5)
        with pytest.raises(FetchRefused, match=UNREACHABLE):
            await fetch("http://gone.test/", nxdomain, resolver=NoSuchHost())


async def test_size_time_status_and_url_limits() -> None:
    big = b"x" * 5000
    answers = {"/sized": Answer(body=big), "/unsized": Answer(body=big, sized=False), "/gone": Answer(410)}
    small = FetchPolicy(allowed_hosts=frozenset({"127.0.0.1"}), max_bytes=4096, timeout_s=5)
    with http_answers(answers) as (port, _):
        base = f"http://127.0.0.1:{port}"
        assert await refused(f"{base}/sized", small) == TOO_LARGE
        assert await refused(f"{base}/unsized", small) == TOO_LARGE
        assert (await fetch(f"{base}/gone", small)).status == 410
        with pytest.raises(UploadRefused, match=r"^bad status$"):
            await fetch_recording(f"{base}/gone", sha1_digest=None, allowed_hosts=frozenset({"127.0.0.1"}))
    with quiet() as silent:
        hung = FetchPolicy(allowed_hosts=frozenset({"127.0.0.1"}), timeout_s=0.5)
        assert await refused(f"http://127.0.0.1:{silent.port}/", hung) == TIMED_OUT
    for url in ("ftp://example.com/a.wav", "file:///etc/passwd", "gopher://x/", "/a.wav", "http:///a", "x" * 10):
        assert await refused(url) == URL_NOT_ALLOWED
    assert await refused("https://example.com/" + "a" * 2100) == URL_NOT_ALLOWED


class NoSuchHost(AbstractResolver):
    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    async def close(self) -> None:
        pass


class Rebinding(AbstractResolver):
    """Answers with the first address on the first lookup and the second on every later one; counts lookups."""

    def __init__(self, first: str, then: str) -> None:
        self.answers, self.lookups = [first, then], 0

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        address = self.answers[min(self.lookups, 1)]
        self.lookups += 1
        return [ResolveResult(hostname=host, host=address, port=port, family=socket.AF_INET, proto=0, flags=0)]

    async def close(self) -> None:
        pass


async def test_a_host_is_resolved_once_and_connected_at_that_address() -> None:
    answers = {"/hop": Answer(302, headers=(("Location", "/a.wav"),)), "/a.wav": Answer(body=b"RIFF-audio")}
    with http_answers(answers) as (port, requested), quiet("127.0.0.2", port) as rebound:
        dns = Rebinding("127.0.0.1", "127.0.0.2")
        policy = FetchPolicy(allowed_hosts=frozenset({"rebind.test"}), timeout_s=5)
        # Two hops on two connections (the server closes each): the second never looks the name up again.
        assert (await fetch(f"http://rebind.test:{port}/hop", policy, resolver=dns)).body == b"RIFF-audio"
        assert (dns.lookups, requested, rebound.connections()) == (1, ["/hop", "/a.wav"], 0)


async def test_the_pinned_resolver_keeps_the_vetted_answer_and_refuses_a_mixed_one() -> None:
    pinned = PinnedResolver(Rebinding("8.8.8.8", "127.0.0.1"))
    await pinned.vet("evil.test", 80, frozenset())
    later = [await pinned.resolve("evil.test", 80) for _ in range(3)]
    assert {r[0]["host"] for r in later} == {"8.8.8.8"}
    with pytest.raises(OSError):
        await pinned.resolve("never-vetted.test", 80)
    flipped = PinnedResolver(Rebinding("127.0.0.1", "8.8.8.8"))
    with pytest.raises(FetchRefused, match=ADDRESS_NOT_ALLOWED):
        await flipped.vet("evil.test", 80, frozenset())

    class Mixed(Rebinding):
        async def resolve(
            self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
        ) -> list[ResolveResult]:
            return [
                ResolveResult(hostname=host, host=a, port=port, family=socket.AF_INET, proto=0, flags=0)
                for a in ("8.8.8.8", "10.0.0.1")
            ]

    with pytest.raises(FetchRefused, match=ADDRESS_NOT_ALLOWED):
        await PinnedResolver(Mixed("", "")).vet("mixed.test", 80, frozenset())
