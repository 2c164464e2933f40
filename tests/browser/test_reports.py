"""Reports in the console (auditors and admins): the plan's KPIs against their 2025 targets with quarterly charts,
the FM -> IP roadmap, drills, CSV downloads with a Vietnamese header; drafters get a 403 page and no menu entry; bad
query parameters get a 4xx page, never a 5xx."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.browser.conftest import Console

CSV_HEADERS = {
    "kpi": "Mã chỉ tiêu,Chỉ tiêu,Giá trị (%),Tử số,Mẫu số,Mục tiêu (%),Năm mục tiêu,Đạt mục tiêu",
    "roadmap": "Năm,Kế hoạch (trạm),Tỷ lệ kế hoạch (%)",
    "drills": "Mã bản tin,Tiêu đề,Phường,Cần phát,Đã nhận",
    "coverage": "Cấp,Mã,Phường,Có loa IP hoạt động,Có bảng tin điện tử",
}


def test_an_auditor_reads_the_kpis_with_their_charts_the_roadmap_and_the_drills(console: Console) -> None:
    page = console.sign_in("mai.le")
    page.get_by_role("link", name="Báo cáo", exact=True).click()
    assert page.get_by_role("heading", name="Báo cáo", exact=True).is_visible()
    table = page.locator("#kpi-table")
    assert table.locator("tbody tr").count() == 7  # the plan's six and the feedback response rate
    assert "Đài FM đã chuyển đổi sang IP" in table.inner_text() and "100,0 %" in table.inner_text()
    chart = page.locator("svg#chart-fm_converted")
    assert chart.get_attribute("role") == "img"
    assert "mục tiêu 2025" in (chart.get_attribute("aria-label") or "")
    assert chart.locator("desc").count() == 1 and chart.locator("rect.ch-bar").count() >= 1
    target = chart.locator("line[data-target]")
    assert target.count() == 1 and target.get_attribute("stroke-dasharray")
    assert "Mục tiêu 2025: 100,0 %" in chart.inner_html()
    assert page.locator("svg#chart-roadmap rect.ch-bar-plan").count() == 4  # 2022..2025
    assert page.locator("#roadmap-table tbody tr").count() == 4
    assert page.get_by_role("heading", name="Báo cáo diễn tập").is_visible()
    console.shot("reports")
    page.get_by_label("Từ năm").fill("2024")
    page.get_by_label("Đến năm").fill("2027")
    page.get_by_role("button", name="Xem lộ trình").click()
    assert page.locator("#roadmap-table tbody tr").count() == 4
    assert page.locator("#roadmap-table tbody th").first.inner_text() == "2024"


def test_each_report_downloads_as_csv_with_a_vietnamese_header(desktop: Console) -> None:
    page = desktop.sign_in("mai.le")
    page.goto("/console/reports")
    with page.expect_download() as info:
        page.get_by_role("link", name="Tải CSV chỉ tiêu").click()
    download = info.value
    assert download.suggested_filename.startswith("keng-bao-cao-kpi-")
    raw = Path(download.path()).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    lines = raw.decode("utf-8-sig").splitlines()
    assert lines[0].startswith(CSV_HEADERS["kpi"]) and len(lines) == 8  # a header and seven KPIs
    request: Any = desktop.context.request
    for name, header in CSV_HEADERS.items():
        reply = request.get(f"/console/reports/{name}.csv")
        assert reply.status == 200, name
        assert reply.headers["content-type"] == "text/csv; charset=utf-8"
        assert reply.headers["content-disposition"].startswith("attachment;")
        body = reply.body()
        assert body.startswith(b"\xef\xbb\xbf") and body.decode("utf-8-sig").startswith(header), name
    roadmap = request.get("/console/reports/roadmap.csv?from=2023&to=2024").body().decode("utf-8-sig").splitlines()
    assert [line.split(",")[0] for line in roadmap[1:]] == ["2023", "2024"]


def test_a_drafter_sees_no_reports_or_audit_and_is_refused_them(desktop: Console) -> None:
    page = desktop.sign_in("lan.nguyen")
    menu = page.get_by_role("navigation", name="Menu chính")
    assert menu.get_by_role("link", name="Báo cáo").count() == 0
    assert menu.get_by_role("link", name="Kiểm toán").count() == 0
    for path in ("/console/reports", "/console/reports/kpi.csv", "/console/audit", "/console/audit/chain",
                 "/console/audit/checkpoint.json"):  # fmt: skip
        response = page.goto(path)
        assert response is not None and response.status == 403, path
        assert page.get_by_role("heading", name="Không có quyền").is_visible()
    desktop.shot("reports-refused-drafter")


def test_bad_parameters_get_a_4xx_page_never_a_5xx(desktop: Console) -> None:
    desktop.sign_in("mai.le")
    request: Any = desktop.context.request
    cases = {
        "/console/reports?from=abc": 400,
        "/console/reports?from=2030&to=2020": 400,
        "/console/reports?from=1800": 400,
        "/console/reports?from=2000&to=2100": 400,
        "/console/reports?from=%EF%BC%92%EF%BC%90%EF%BC%92%EF%BC%92": 400,  # full-width digits
        "/console/reports?unknown=1": 400,
        "/console/reports/nothing.csv": 404,
        "/console/reports/kpi.csv?from=2022": 400,
        "/console/reports/roadmap.csv?to=x": 400,
        "/console/reports?asof=yesterday": 400,
        "/console/reports/kpi.csv?asof=2026-13-45T99:00": 400,
    }
    for path, status in cases.items():
        reply = request.get(path)
        assert reply.status == status, (path, reply.status)
        assert reply.headers["content-type"].startswith("text/html"), path
