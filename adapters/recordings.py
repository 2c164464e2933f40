"""Recorded audio that arrives with a message (a CAP `resource`, inline or by URL), kept in the audio store.

The bytes are validated like an operator's upload (type, size, duration, decodable), stored under the SHA-256 of
what was received, and served as MP3 (a non-MP3 recording is decoded and encoded once). Fetching a URL is bounded
in time and size, and a CAP `digest` (SHA-1) must match.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import aiohttp
import numpy as np
import soundfile

from adapters.audio_store import AssetInfo, encode_mp3, lookup
from adapters.audio_upload import UploadLimits, UploadRefused, validate_upload
from adapters.private_files import private_dir, write_private
from adapters.tts.base import Audio

FETCH_TIMEOUT_S = 20.0


def store_recording(root: Path, data: bytes, *, source: str, limits: UploadLimits | None = None) -> AssetInfo:
    """Validate and store a recording; returns the stored MP3 asset. Raises UploadRefused with the reason."""
    info = validate_upload(data, limits=limits)
    key = hashlib.sha256(data).hexdigest()
    found = lookup(root, key, "mp3")
    if found is not None:
        return found
    if info.kind == "mp3":
        mp3 = data
    else:
        samples, rate = soundfile.read(io.BytesIO(data), dtype="int16", always_2d=True)
        mono = samples.mean(axis=1).astype(np.int16)
        mp3 = encode_mp3(Audio(samples=mono, sample_rate=int(rate)))
    private_dir(root)
    write_private(root / f"{key}.mp3", mp3)
    meta = {"duration_s": round(info.duration_s, 3), "engine": source, "voice": "", "sample_rate": info.sample_rate}
    write_private(root / f"{key}.json", json.dumps(meta).encode())
    stored = lookup(root, key, "mp3")
    if stored is None:  # pragma: no cover - just written
        raise RuntimeError(f"recording {key} vanished after writing")
    return stored


async def fetch_recording(url: str, *, sha1_digest: str | None, max_bytes: int = UploadLimits().max_bytes) -> bytes:
    """Download a recording, refusing oversized bodies, non-2xx answers and a digest mismatch."""
    timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT_S)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as reply:
            if reply.status != 200:
                raise UploadRefused(f"{url} answered HTTP {reply.status}")
            data = await reply.content.read(max_bytes + 1)
    except (aiohttp.ClientError, TimeoutError) as e:
        raise UploadRefused(f"cannot fetch {url}: {type(e).__name__}: {e}") from None
    if len(data) > max_bytes:
        raise UploadRefused(f"{url} is larger than {max_bytes} bytes")
    if sha1_digest and hashlib.sha1(data).hexdigest().lower() != sha1_digest.lower():
        raise UploadRefused(f"{url}: the SHA-1 of the fetched bytes does not match the alert's digest")
    return data
