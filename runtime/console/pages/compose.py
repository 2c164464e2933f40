"""Composing: `GET/POST /console/compose` (a new bulletin), `GET/POST /console/broadcasts/{id}/edit` (revising one),
and the helpers the form calls as the person types: `POST /console/spoken` (the text as the voice will read it),
`POST /console/compose/preview-audio` and `POST /console/compose/preview-board` (speech and e-board page of the text,
kept for a few minutes and served by `GET /console/previews/{key}`; runtime/console/previews.py says why).

Drafters only (others get a 403 page, and the menu does not offer the page). The form is turned into the operator
API's body and parsed by the API's own parser (runtime/console/compose_form.py), then `services.broadcasts.draft` /
`revise` / `submit` decide; a refusal of the content shows the form again, as typed, with a Vietnamese message naming
the field (422); a target outside the person's wards is the domain's refusal (403 page), nothing stored.

The speech preview uses the embedded espeak-ng voice, as the render worker of `keng serve` does for the audio that
speakers actually play (runtime/bootstrap.py `delivery_context`), through the renderer `keng tts say` uses
(runtime/bootstrap.py `build_renderer`), built on first use and closed with the console.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any
from uuid import UUID

from aiohttp import web

from keng.adapters.tts.render import Renderer
from keng.domain.broadcast import REVISABLE_STATES, Broadcast, announced
from keng.domain.content import MAX_REPEATS, MAX_TEXT, MAX_TITLE
from keng.domain.errors import AreaEnded, InvalidValue, UnknownArea
from keng.domain.values import BroadcastState, Channel, Priority
from keng.domain.vitext import TextRefused, prepare
from keng.runtime.console import data
from keng.runtime.console.areamap import area_map, choosable_tree
from keng.runtime.console.compose_form import ComposeForm, FormInvalid, domain_invalid
from keng.runtime.console.labels import STATES
from keng.runtime.console.previews import Busy, PreviewStore
from keng.runtime.console.render import render
from keng.runtime.console.session import Person, person
from keng.runtime.http.services import SERVICES, Services
from keng.services import broadcasts

PREVIEWS = web.AppKey("console_previews", PreviewStore)
RENDERER = web.AppKey("console_renderer", list)  # [Renderer] once built: engines load on the first preview
PREVIEW_TIMEOUT_S = 20.0
MAX_BOARD_PAGES = 6
SAVED = {"draft": "Đã lưu bản nháp.", "submitted": "Đã lưu và gửi duyệt.", "revised": "Đã lưu thay đổi."}


def _drafter(request: web.Request) -> Person:
    who = person(request)
    if not who.can_draft:
        raise web.HTTPForbidden(text="Chỉ người soạn tin mới soạn và sửa được bản tin.")
    if data.as_of(request) is not None:
        raise web.HTTPConflict(text="Chế độ xem tại một thời điểm chỉ để đọc; không soạn tin được.")
    return who


def _broadcast_id(request: web.Request) -> UUID:
    raw = request.match_info["id"]
    try:
        return UUID(raw)
    except ValueError:
        raise web.HTTPNotFound(text=f"'{raw[:60]}' không phải mã bản tin.") from None


async def _form_page(request: web.Request, who: Person, form: ComposeForm, *, status: int = 200, error: str = "",
                     error_field: str = "", item: Broadcast | None = None) -> web.Response:  # fmt: skip
    services = request.app[SERVICES]
    catalog = await data.catalog(request)

    def build() -> dict[str, Any]:
        areas = catalog.areas(services.app.clock())  # a draft targets the units in force now
        tree = choosable_tree(areas, who.staff)
        offered = {code for node in tree for code in node.codes()}
        names = {a.code: a.name for a in areas}
        return {
            "tree": tree,
            "map": area_map(tree, areas, catalog.endpoints(), form.areas),
            "others": [(c, names.get(c, c)) for c in form.areas if c not in offered],
        }

    context = await services.run(build)
    edit = item is not None
    return render(
        request,
        "compose.html",
        status=status,
        title="Sửa bản tin" if edit else "Soạn bản tin",
        active="compose" if not edit else "broadcasts",
        form=form,
        error=error,
        error_field=error_field,
        item=item,
        action=f"/console/broadcasts/{item.id}/edit" if item is not None else "/console/compose",
        saved=SAVED.get(request.query.get("saved", ""), ""),
        max_title=MAX_TITLE,
        max_text=MAX_TEXT,
        max_repeats=MAX_REPEATS,
        priorities=[p.value for p in Priority],
        channels=[c.value for c in Channel],
        chosen=set(form.areas),
        **context,
    )


async def compose_form(request: web.Request) -> web.Response:
    who = _drafter(request)
    if set(request.query) - {"saved"}:
        raise web.HTTPBadRequest(text="Trang soạn tin không nhận tham số này.")
    return await _form_page(request, who, ComposeForm())


def _saved_target(services: Services, bid: UUID, what: str) -> str:
    """Where the browser goes after saving: the broadcast's own page once it is sent for approval (its actions and
    live progress live there), else the edit form with a notice."""
    state = services.app.broadcast(bid).state
    if what == "submitted":
        return f"/console/broadcasts/{bid}?done=submit"
    if state in REVISABLE_STATES:
        return f"/console/broadcasts/{bid}/edit?saved={what}"
    return f"/console/broadcasts/{bid}"


async def compose_post(request: web.Request) -> web.StreamResponse:
    who = _drafter(request)
    services = request.app[SERVICES]
    form = ComposeForm.of_post(await request.post())
    tz = services.settings.display_tz
    try:
        fields = form.fields(tz)

        def save() -> str:
            bid = broadcasts.draft(services.app, by=who.handle, **fields)
            if form.action == "submit":
                broadcasts.submit(services.app, bid, by=who.handle)
                return _saved_target(services, bid, "submitted")
            return _saved_target(services, bid, "draft")

        target = await services.run(save)
    except FormInvalid as e:
        return await _form_page(request, who, form, status=422, error=str(e), error_field=e.field)
    except (InvalidValue, UnknownArea) as e:
        invalid = domain_invalid(str(e)) if not isinstance(e, UnknownArea) else _unknown_area(e)
        return await _form_page(request, who, form, status=422, error=str(invalid), error_field=invalid.field)
    raise web.HTTPSeeOther(target)


def _unknown_area(e: UnknownArea) -> FormInvalid:
    detail = str(e).split(": ", 1)[-1]
    if isinstance(e, AreaEnded):
        instead = ", ".join(e.successors) or "không có"
        return FormInvalid("targets", f"Địa bàn nhận tin: mã khu vực đã hết hiệu lực, dùng mã {instead} ({detail}).")
    return FormInvalid("targets", f"Địa bàn nhận tin: mã khu vực không tồn tại ({detail}).")


async def _editable(request: web.Request, who: Person) -> Broadcast:
    """The broadcast of the path, if the person may revise it now (404 unknown or unreadable, 403 out of their
    scope, 409 in a state that cannot be revised)."""
    services, bid = request.app[SERVICES], _broadcast_id(request)
    item = await services.run(lambda: broadcasts.readable(services.app, bid, who.visibility))
    who.staff.require_scope(list(item.scope), "revise this broadcast")  # the domain's own check, asked ahead
    if item.state not in REVISABLE_STATES:
        raise web.HTTPConflict(
            text=f"Bản tin đang ở trạng thái “{STATES.get(item.state, item.state)}”: không sửa được nữa."
        )
    return item


async def edit_form(request: web.Request) -> web.Response:
    who = _drafter(request)
    if set(request.query) - {"saved"}:
        raise web.HTTPBadRequest(text="Trang sửa bản tin không nhận tham số này.")
    item = await _editable(request, who)
    form = ComposeForm.of_broadcast(item, request.app[SERVICES].settings.display_tz)
    return await _form_page(request, who, form, item=item)


async def edit_post(request: web.Request) -> web.StreamResponse:
    who = _drafter(request)
    services = request.app[SERVICES]
    item = await _editable(request, who)
    posted = await request.post()
    form = ComposeForm.of_post(posted)
    if str(posted.get("version", "")) != str(item.version):
        stale = "Bản tin vừa được người khác thay đổi; hãy tải lại trang rồi sửa tiếp."
        return await _form_page(request, who, form, status=409, item=item, error=stale)
    tz = services.settings.display_tz
    try:
        fields = form.fields(tz)

        def save() -> str:
            broadcasts.revise(services.app, item.id, by=who.handle, **fields)
            if form.action == "submit" and services.app.broadcast(item.id).state == BroadcastState.DRAFT:
                broadcasts.submit(services.app, item.id, by=who.handle)
                return _saved_target(services, item.id, "submitted")
            return _saved_target(services, item.id, "revised")

        target = await services.run(save)
    except FormInvalid as e:
        return await _form_page(request, who, form, status=422, error=str(e), error_field=e.field, item=item)
    except (InvalidValue, UnknownArea) as e:
        invalid = domain_invalid(str(e)) if not isinstance(e, UnknownArea) else _unknown_area(e)
        return await _form_page(request, who, form, status=422, error=str(invalid), error_field=invalid.field,
                                item=item)  # fmt: skip
    raise web.HTTPSeeOther(target)


# -- as the person types -------------------------------------------------------------------------------------------


async def _text_of(request: web.Request) -> tuple[str, str, bool]:
    """The posted text (announced as a drill when the drill box is ticked), priority and drill flag; 413 when the
    text is over the content limit."""
    form = await request.post()
    text = form.get("text", "")
    if not isinstance(text, str):
        raise web.HTTPBadRequest(text="Thiếu nội dung.")
    if len(text) > MAX_TEXT:
        raise web.HTTPRequestEntityTooLarge(
            max_size=MAX_TEXT, actual_size=len(text), text=f"Nội dung dài quá {MAX_TEXT} ký tự."
        )
    priority = str(form.get("priority", ""))
    drill = form.get("drill") in ("on", "1", "true")
    return announced(text, drill), priority if priority in set(Priority) else Priority.NORMAL.value, drill


async def spoken(request: web.Request) -> web.Response:
    """The text as the voice will read it (numbers, dates, abbreviations in words), as plain text."""
    _drafter(request)
    text, _, _ = await _text_of(request)
    try:
        said = prepare(text).text if text.strip() else ""
    except TextRefused:
        said = ""
    return web.Response(text=said, content_type="text/plain", charset="utf-8")


def _renderer(request: web.Request) -> Renderer:
    holder = request.app[RENDERER]
    if not holder:
        from keng.runtime.bootstrap import build_renderer

        holder.append(build_renderer())
    renderer: Renderer = holder[0]
    return renderer


def _refuse(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def preview_audio(request: web.Request) -> web.Response:
    """Speak the text with the embedded voice; answers {"url": ...} of an MP3 kept for a few minutes."""
    from keng.adapters.audio_store import encode_mp3
    from keng.adapters.tts.base import SynthesisFailed
    from keng.adapters.tts.render import TextTooLong
    from keng.runtime.bootstrap import render_config

    who = _drafter(request)
    text, _, _ = await _text_of(request)
    if not text.strip():
        return _refuse(422, "Nội dung: chưa có gì để đọc.")
    services, store = request.app[SERVICES], request.app[PREVIEWS]
    config = render_config(services.settings, "espeak").tts
    config = replace(config, timeout_s=PREVIEW_TIMEOUT_S, max_text_chars=MAX_TEXT + 200)
    renderer = _renderer(request)
    try:
        store.begin(who.handle)
    except Busy:
        return _refuse(429, "Đang tạo bản nghe thử trước đó; xin chờ giây lát.")
    try:

        def speak() -> tuple[bytes, float]:
            prepared = renderer.check_text(text, config)
            audio = renderer.synthesize(prepared, config)
            return encode_mp3(audio, config.mp3_bitrate_kbps), audio.duration_s

        mp3, seconds = await asyncio.to_thread(speak)
    except (TextRefused, TextTooLong):
        return _refuse(422, "Nội dung: không có chữ nào đọc được.")
    except SynthesisFailed as e:
        return _refuse(503, f"Bộ đọc {e.engine} không đọc được lúc này ({e.reason}).")
    finally:
        store.end(who.handle)
    key = store.put(who.handle, "audio", "audio/mpeg", mp3)
    return web.json_response({"url": f"/console/previews/{key}", "mime": "audio/mpeg", "seconds": round(seconds, 1)})


async def preview_board(request: web.Request) -> web.Response:
    """The e-board pages of the text (the standard 256x128 LED profile); answers {"urls": [...], "pages": n}."""
    from keng.adapters.boards import BoardProfile, page_count, render_board_png, render_board_text

    who = _drafter(request)
    text, priority, _ = await _text_of(request)
    if not text.strip():
        return _refuse(422, "Nội dung: chưa có gì để hiển thị.")
    store = request.app[PREVIEWS]
    try:
        store.begin(who.handle)
    except Busy:
        return _refuse(429, "Đang tạo bản xem trước; xin chờ giây lát.")
    try:

        def draw() -> tuple[list[bytes], int]:
            profile = BoardProfile()
            layout = render_board_text(text, priority, profile)
            pages = page_count(layout)
            return [render_board_png(layout, profile, p) for p in range(min(pages, MAX_BOARD_PAGES))], pages

        images, pages = await asyncio.to_thread(draw)
    finally:
        store.end(who.handle)
    urls = [f"/console/previews/{store.put(who.handle, f'board{i}', 'image/png', png)}" for i, png in enumerate(images)]
    return web.json_response({"urls": urls, "pages": pages, "shown": len(urls)})


async def preview_file(request: web.Request) -> web.Response:
    who = person(request)
    found = request.app[PREVIEWS].get(who.handle, request.match_info["key"])
    if found is None:
        raise web.HTTPNotFound(text="Bản xem trước không còn (quá vài phút) hoặc không phải của bạn.")
    return web.Response(body=found.data, content_type=found.mime, headers={"Cache-Control": "private, max-age=600"})


async def _close_renderer(console: web.Application) -> None:
    for renderer in console[RENDERER]:
        renderer.close()


def add_routes(console: web.Application) -> None:
    console[PREVIEWS] = PreviewStore()
    console[RENDERER] = []
    console.on_cleanup.append(_close_renderer)
    console.router.add_get("/compose", compose_form)
    console.router.add_post("/compose", compose_post)
    console.router.add_get("/broadcasts/{id}/edit", edit_form)
    console.router.add_post("/broadcasts/{id}/edit", edit_post)
    console.router.add_post("/spoken", spoken)
    console.router.add_post("/compose/preview-audio", preview_audio)
    console.router.add_post("/compose/preview-board", preview_board)
    console.router.add_get("/previews/{key}", preview_file)
