"""Recordings that come with an alert: fetched over real HTTP within limits and digest, validated, stored as MP3."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from aiohttp import web

from keng.adapters.audio_store import encode_wav
from keng.adapters.audio_upload import UploadRefused
from keng.adapters.recordings import fetch_recording, store_recording
from keng.adapters.tts.espeak import EspeakSynthesizer


async def test_fetch_checks_status_size_and_digest_then_store_encodes_mp3(tmp_path: Path) -> None:
    wav = encode_wav(EspeakSynthesizer().synthesize(["Thông báo khẩn"], voice="vi", speed=1.0))

    async def audio(request: web.Request) -> web.Response:
        return web.Response(body=wav, content_type="audio/x-wav")

    app = web.Application()
    app.router.add_get("/a.wav", audio)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    hosts = frozenset(
        {"127.0.0.1"}
    )  # loopback is reachable only when allowlisted (tests/integration/test_outbound_fetch.py)
    try:
        data = await fetch_recording(f"{base}/a.wav", sha1_digest=hashlib.sha1(wav).hexdigest(), allowed_hosts=hosts)
        assert data == wav
        with pytest.raises(UploadRefused, match="does not match"):
            await fetch_recording(f"{base}/a.wav", sha1_digest="0" * 40, allowed_hosts=hosts)
        with pytest.raises(UploadRefused, match=r"^bad status$"):
            await fetch_recording(f"{base}/missing.wav", sha1_digest=None, allowed_hosts=hosts)
        with pytest.raises(UploadRefused, match=r"^too large$"):
            await fetch_recording(f"{base}/a.wav", sha1_digest=None, max_bytes=100, allowed_hosts=hosts)
        with pytest.raises(UploadRefused, match=r"^address not allowed$"):
            await fetch_recording(f"{base}/a.wav", sha1_digest=None)
    finally:
        await runner.cleanup()
    asset = store_recording(tmp_path, wav, source="cap-resource")
    assert asset.mime == "audio/mpeg" and asset.path.read_bytes()[:2] in (b"ID", b"\xff\xfb", b"\xff\xf3")
    assert 0.3 < asset.duration_s < 5 and asset.engine == "cap-resource"
    with pytest.raises(UploadRefused):
        store_recording(tmp_path, b"not audio at all" * 100, source="cap-resource")
