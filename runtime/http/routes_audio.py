"""Audio for devices and staff: `GET /audio/{key}` with the asset's hash as `ETag`, conditional requests and single
byte ranges (speakers on 3G/4G resume interrupted downloads). Access: a signed link (devices) or a staff token.

The file's own SHA-256 travels as `Repr-Digest`, so a device can check what it will play against the `play` command.
Board pages likewise: `GET /board/{sha256}.png` (the image) and `GET /board/{sha256}.json` (its layout), the files the
dispatcher stored under their own hash (runtime/dispatch/content.py) and linked from `display` commands.
"""

from __future__ import annotations

import base64
import hashlib
import re

from aiohttp import web

from keng.adapters.audio_store import lookup
from keng.runtime.http.params import bounded_int
from keng.runtime.http.problems import Problem
from keng.runtime.http.routes_operator import current_staff
from keng.runtime.http.services import SERVICES

_RANGE = re.compile(r"^bytes=([0-9]*)-([0-9]*)$")
_BOARD_FILE = re.compile(r"^([0-9a-f]{64})\.(png|json)$")
BOARD_MIME = {"png": "image/png", "json": "application/json"}
MAX_OFFSET = 2**53  # byte offsets in a Range header; past any file
MAX_EXPIRY = 10**12  # `exp` of a signed link, Unix seconds (year 33658)


def _byte_range(header: str, size: int) -> tuple[int, int] | None:
    """(start, end inclusive) of a single satisfiable range, or None; raises 416 for an unsatisfiable one."""
    m = _RANGE.match(header.strip())
    if not m or (not m.group(1) and not m.group(2)):
        return None  # unsupported forms (several ranges) get the whole file, as RFC 9110 allows
    first, last = (bounded_int(g, "header Range", lo=0, hi=MAX_OFFSET) if g else None for g in m.groups())
    if first is not None:
        start = first
        end = min(last, size - 1) if last is not None else size - 1
    else:
        start, end = max(0, size - (last or 0)), size - 1
    if start >= size or start > end:
        raise Problem(416, "range-not-satisfiable", f"bytes {header} is outside the {size}-byte file")
    return start, end


def _matches(request: web.Request, etag: str) -> bool:
    """The client already holds this file (If-None-Match names its ETag)."""
    return etag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]


def _repr_digest(data: bytes) -> str:
    """The Repr-Digest header of a stored file: its SHA-256, which a device compares with the command's hash."""
    return f"sha-256=:{base64.b64encode(hashlib.sha256(data).digest()).decode()}:"


async def _authorise(request: web.Request, key: str, what: str) -> None:
    """A signed link for `key` that has not expired, or a staff token."""
    services = request.app[SERVICES]
    query = request.query
    if "sig" in query or "exp" in query:
        exp = bounded_int(query.get("exp", ""), "query parameter 'exp'", lo=0, hi=MAX_EXPIRY)
        if not services.audio_links.allows(key, exp, query.get("sig", ""), now=services.wall_clock()):
            raise Problem(403, "forbidden", f"the {what} link is invalid or has expired")
    else:
        await current_staff(request)


async def audio(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    key = request.match_info["key"].removesuffix(".mp3")
    await _authorise(request, key, "audio")
    info = lookup(services.settings.data_dir / "assets", key, "mp3")
    if info is None:
        raise Problem(404, "not-found", f"no stored audio {key[:16]}…")
    etag = f'"{info.key}"'
    headers = {"ETag": etag, "Accept-Ranges": "bytes", "Cache-Control": "private, max-age=86400, immutable"}
    if _matches(request, etag):
        return web.Response(status=304, headers=headers)
    data = await services.run(info.path.read_bytes)
    headers["Repr-Digest"] = _repr_digest(data)
    span = _byte_range(request.headers["Range"], len(data)) if "Range" in request.headers else None
    if span is None:
        return web.Response(body=data, content_type=info.mime, headers=headers)
    start, end = span
    headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
    return web.Response(status=206, body=data[start : end + 1], content_type=info.mime, headers=headers)


async def board_file(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    name = request.match_info["key"]
    match = _BOARD_FILE.match(name)
    if match is None:
        raise Problem(404, "not-found", "a board page is <sha256>.png or <sha256>.json")
    sha, suffix = match.groups()
    await _authorise(request, sha, "board page")
    path = services.settings.data_dir / "assets" / "boards" / name
    etag = f'"{sha}"'
    headers = {"ETag": etag, "Cache-Control": "private, max-age=86400, immutable"}
    if _matches(request, etag):
        return web.Response(status=304, headers=headers)
    try:
        data = await services.run(path.read_bytes)
    except FileNotFoundError:
        raise Problem(404, "not-found", f"no stored board page {sha[:16]}…") from None
    headers["Repr-Digest"] = _repr_digest(data)
    return web.Response(body=data, content_type=BOARD_MIME[suffix], headers=headers)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/audio/{key}", audio)
    app.router.add_get("/board/{key}", board_file)
