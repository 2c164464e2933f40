"""Recorded audio that arrives with a message (a CAP `resource`, inline or by URL), kept in the audio store.

The bytes are validated like an operator's upload (type, size, duration, decodable), stored under the SHA-256 of
what was received, and served as MP3 (a non-MP3 recording is decoded and encoded once). A URL is fetched through the
outbound guard (allowed addresses only, bounded in time and size), and a CAP `digest` (SHA-1) must match.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import soundfile

from keng.adapters.audio_store import AssetInfo, encode_mp3, lookup
from keng.adapters.audio_upload import UploadLimits, UploadRefused, validate_upload
from keng.adapters.outbound import BAD_STATUS, FetchPolicy, FetchRefused, fetch
from keng.adapters.private_files import private_dir, write_private
from keng.adapters.tts.base import Audio

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


async def fetch_recording(
    url: str,
    *,
    sha1_digest: str | None,
    allowed_hosts: frozenset[str] = frozenset(),
    max_bytes: int = UploadLimits().max_bytes,
) -> bytes:
    """Download a recording through the outbound guard (adapters/outbound.py), refusing non-200 answers and a digest
    mismatch. The reasons are the guard's generic texts: they never tell which internal ports are open."""
    policy = FetchPolicy(allowed_hosts=allowed_hosts, max_bytes=max_bytes, timeout_s=FETCH_TIMEOUT_S)
    try:
        reply = await fetch(url, policy)
    except FetchRefused as e:
        raise UploadRefused(e.reason) from None
    if reply.status != 200:
        raise UploadRefused(BAD_STATUS)
    if sha1_digest and hashlib.sha1(reply.body).hexdigest().lower() != sha1_digest.lower():
        raise UploadRefused("the SHA-1 of the fetched bytes does not match the alert's digest")
    return reply.body
