"""The console's broadcast page, its commands, the live delivery fragment and the approval queue, over real HTTP
without a browser: who sees which button, four-eyes, scope (another ward's broadcast does not exist), refusals as
4xx pages that change nothing, the revision diff, and the as-of view without buttons."""

from __future__ import annotations

import http.client
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode
from uuid import UUID

import pytest

from keng.adapters.secrets import SecretStore
from keng.adapters.store.app import Keng
from keng.runtime.config import load_settings
from keng.runtime.http.services import Services
from keng.services import broadcasts
from keng.services.access import issue_token
from tests.http_server import serve

STAFF = ("lan.nguyen", "hung.tran", "minh.pham", "ha.vu", "mai.le", "tuan.do")
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Page:
    status: int
    headers: dict[str, str]
    text: str


@dataclass
class Browser:
    """Cookies and the CSRF token of one console session, over plain HTTP."""

    port: int
    cookies: dict[str, str] = field(default_factory=dict)
    csrf: str = ""

    def send(self, method: str, path: str, form: dict[str, str] | None = None) -> Page:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = None
        if form is not None:
            body = urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers)
            r = conn.getresponse()
            for name, value in r.getheaders():
                if name.lower() == "set-cookie":
                    for key, morsel in SimpleCookie(value).items():
                        if morsel["max-age"] == "0" or not morsel.value:
                            self.cookies.pop(key, None)
                        else:
                            self.cookies[key] = morsel.value
            page = Page(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode())
        finally:
            conn.close()
        found = CSRF.search(page.text)
        if found and "keng_session" in self.cookies:
            self.csrf = found.group(1)
        return page

    def get(self, path: str) -> Page:
        return self.send("GET", path)

    def post(self, path: str, **form: str) -> Page:
        return self.send("POST", path, {"csrf": self.csrf, **form})

    def sign_in(self, token: str) -> Browser:
        form = self.get("/console/sign-in")
        pre = CSRF.search(form.text)
        assert pre is not None
        done = self.send("POST", "/console/sign-in/token", {"csrf": pre.group(1), "token": token})
        assert done.status == 303, done.text
        assert self.get("/console/").status == 200
        return self


@dataclass
class Site:
    app: Keng
    port: int
    tokens: dict[str, str]

    def browser(self, handle: str) -> Browser:
        return Browser(self.port).sign_in(self.tokens[handle])


@pytest.fixture
def site(sample_app: Keng, tmp_path: Path) -> Iterator[Site]:
    settings = load_settings(data_dir=str(tmp_path), environ={})
    tokens = {h: issue_token(sample_app, staff=h, label="test", by="admin") for h in STAFF}
    services = Services(app=sample_app, secrets=SecretStore(tmp_path), settings=settings)
    with serve(services) as client:
        yield Site(sample_app, client.port, tokens)


def drafted(app: Keng, by: str = "lan.nguyen", ward: str = "00595", *, submit: bool = True, **extra: object) -> UUID:
    content = {"title": "Thông báo tiêm phòng dại", "text": "Tiêm phòng dại cho chó mèo sáng thứ bảy tại nhà văn hóa.",
               "priority": "normal", "target_areas": [ward], **extra}  # fmt: skip
    bid = broadcasts.draft(app, by=by, **content)
    if submit:
        broadcasts.submit(app, bid, by=by)
    return bid


def action_forms(page: Page, bid: UUID) -> set[str]:
    return set(re.findall(rf'action="/console/broadcasts/{bid}/(\w+)"', page.text))


def test_the_drafter_sees_the_four_eyes_reason_and_the_approver_the_buttons(site: Site) -> None:
    bid = drafted(site.app)
    mine = site.browser("lan.nguyen").get(f"/console/broadcasts/{bid}")
    assert mine.status == 200
    assert "nguyên tắc bốn mắt" in mine.text
    assert action_forms(mine, bid) == {"cancel"}  # a drafter may withdraw it, never approve it
    theirs = site.browser("hung.tran").get(f"/console/broadcasts/{bid}")
    assert action_forms(theirs, bid) == {"approve", "reject", "cancel"}
    assert "nguyên tắc bốn mắt" not in theirs.text
    assert 'data-confirm="Hủy bản tin' in theirs.text
    # A drafter and approver who wrote it: the approve button is replaced by the reason.
    own = drafted(site.app, by="minh.pham")
    page = site.browser("minh.pham").get(f"/console/broadcasts/{own}")
    assert "approve" not in action_forms(page, own) and "nguyên tắc bốn mắt" in page.text


def test_a_revision_shows_a_word_level_diff_and_the_approver_approves(site: Site) -> None:
    bid = drafted(site.app)
    broadcasts.revise(site.app, bid, by="lan.nguyen", text="Tiêm phòng dại cho chó mèo chiều chủ nhật tại nhà văn hóa.",
                      priority="priority")  # fmt: skip
    hung = site.browser("hung.tran")
    page = hung.get(f"/console/broadcasts/{bid}")
    assert "Sửa bản tin (lần 1)" in page.text
    assert re.search(r"<del>(<span[^>]*>[^<]*</span>)?sáng thứ bảy", page.text), page.text
    assert re.search(r"<ins>(<span[^>]*>[^<]*</span>)?chiều chủ nhật", page.text)
    assert "Thông thường" in page.text and "Ưu tiên" in page.text  # the priority change reads in Vietnamese
    done = hung.post(f"/console/broadcasts/{bid}/approve")
    assert done.status == 303 and done.headers["location"] == f"/console/broadcasts/{bid}?done=approve"
    assert site.app.broadcast(bid).state == "approved"
    after = hung.get(done.headers["location"])
    assert "Đã duyệt bản tin." in after.text and "Trần Văn Hùng (hung.tran)" in after.text


def test_reject_needs_a_reason_and_cancel_records_one(site: Site) -> None:
    bid = drafted(site.app)
    hung = site.browser("hung.tran")
    empty = hung.post(f"/console/broadcasts/{bid}/reject", reason="  ")
    assert empty.status == 400 and "lý do" in empty.text
    assert site.app.broadcast(bid).state == "submitted"
    assert hung.post(f"/console/broadcasts/{bid}/reject", reason="Sai ngày tiêm.").status == 303
    page = hung.get(f"/console/broadcasts/{bid}")
    assert "Sai ngày tiêm." in page.text and not action_forms(page, bid)
    other = drafted(site.app)
    assert hung.post(f"/console/broadcasts/{other}/cancel", reason="Trùng bản tin khác.").status == 303
    assert site.app.broadcast(other).state == "cancelled"


def test_refusals_are_4xx_pages_that_change_nothing(site: Site) -> None:
    own = drafted(site.app)
    lan = site.browser("lan.nguyen")
    before = site.app.max_position()
    refused = lan.post(f"/console/broadcasts/{own}/approve")  # forged: the drafter has no approve button
    assert refused.status == 403 and "Không" in refused.text
    assert lan.post(f"/console/broadcasts/{own}/submit").status == 409  # already submitted
    assert site.app.max_position() == before
    # Another ward's broadcast does not exist for a ward's approver, to read or to approve.
    elsewhere = drafted(site.app, by="lan.nguyen", ward="00598")
    ha, hung = site.browser("ha.vu"), site.browser("hung.tran")
    before = site.app.max_position()  # (signing in may write: a token's first use)
    assert ha.get(f"/console/broadcasts/{elsewhere}").status == 404
    assert ha.get(f"/console/broadcasts/{elsewhere}/progress").status == 404
    assert ha.post(f"/console/broadcasts/{elsewhere}/approve").status == 404
    assert site.app.broadcast(elsewhere).state == "submitted"
    for path in ("/console/broadcasts/not-a-uuid", f"/console/broadcasts/{UUID(int=7)}",
                 f"/console/broadcasts/{UUID(int=7)}/progress", f"/console/broadcasts/{own}/audio/abc"):  # fmt: skip
        assert hung.get(path).status == 404, path
    assert hung.post(f"/console/broadcasts/{UUID(int=7)}/approve").status == 404
    assert hung.post(f"/console/broadcasts/{own}/explode").status in (404, 405)
    assert hung.post("/console/broadcasts/nope/approve").status == 404
    assert hung.get(f"/console/broadcasts/{own}?bogus=1").status == 400
    assert hung.get(f"/console/broadcasts/{own}?done=explode").status == 400
    assert hung.post(f"/console/broadcasts/{own}/cancel", reason="x" * 1001).status == 400
    assert site.app.max_position() == before


def test_the_approval_queue_lists_what_waits_oldest_first_and_own_items_apart(site: Site) -> None:
    first = drafted(site.app, title="Họp tổ dân phố tháng 12")
    second = drafted(site.app, title="Lịch thu gom rác mới")
    own = drafted(site.app, by="minh.pham", title="Bản tin của Minh")
    elsewhere = drafted(site.app, ward="00598", title="Bản tin phường khác")
    hung = site.browser("hung.tran").get("/console/approvals")
    assert hung.status == 200
    queue = hung.text.split('id="queue"')[1].split("</table>")[0]
    assert queue.index(str(first)) < queue.index(str(second)) and str(own) in queue
    minh = site.browser("minh.pham").get("/console/approvals")
    mine = minh.text.split('id="mine"')[1].split("</table>")[0]
    assert str(own) in mine and str(own) not in minh.text.split('id="queue"')[1].split("</table>")[0]
    assert "nguyên tắc bốn mắt" in minh.text
    ha = site.browser("ha.vu").get("/console/approvals")
    assert str(first) in ha.text and str(elsewhere) not in ha.text
    assert site.browser("lan.nguyen").get("/console/approvals").status == 403
    assert site.browser("hung.tran").get("/console/approvals?x=1").status == 400


def test_the_live_fragment_and_the_as_of_view(site: Site) -> None:
    bid = drafted(site.app)
    hung = site.browser("hung.tran")
    fragment = hung.get(f"/console/broadcasts/{bid}/progress")
    assert fragment.status == 200 and "Chưa phát" in fragment.text and "<html" not in fragment.text
    page = hung.get(f"/console/broadcasts/{bid}")
    assert f'data-live-url="/console/broadcasts/{bid}/progress"' in page.text
    at = site.app.broadcast(bid).modified_on.isoformat()
    mai = site.browser("mai.le")
    then = mai.get(f"/console/broadcasts/{bid}?asof={at.replace('+', '%2B')}")
    assert then.status == 200 and not action_forms(then, bid) and "chỉ đọc" in then.text
    assert "data-live-url" not in then.text
