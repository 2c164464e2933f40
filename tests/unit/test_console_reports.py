"""The console's report charts and CSV files without a browser: chart geometry (bars, the dashed 2025 target,
Vietnamese labels, accessible names), the CSV bytes (BOM, Vietnamese header, spreadsheet formulas neutralised) and
the rendered SVG markup."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from zoneinfo import ZoneInfo

from keng.runtime.console import charts
from keng.runtime.console.pages import reports
from keng.runtime.console.render import environment

SVG = "{http://www.w3.org/2000/svg}"


def test_percentages_and_quarters_read_the_vietnamese_way() -> None:
    assert charts.percent(95.3) == "95,3 %"
    assert charts.percent(1234.5) == "1.234,5 %"
    assert charts.quarter_vi("2024Q2") == "Quý 2/2024"


def test_a_kpi_chart_has_a_bar_per_quarter_and_the_target_as_a_dashed_line() -> None:
    chart = charts.kpi_chart("Cán bộ đã được tập huấn", {"2025Q1": 40.0, "2024Q4": 12.5, "2025Q2": 95.3}, 100.0, 2025)
    bars = [s for s in chart.shapes if s.kind == "rect"]
    assert [b.tip for b in bars] == ["Quý 4/2024: 12,5 %", "Quý 1/2025: 40,0 %", "Quý 2/2025: 95,3 %"]
    assert bars[0].h < bars[1].h < bars[2].h
    (target,) = [s for s in chart.shapes if s.css == "target"]
    assert target.y == charts.TOP  # 100 % is the top of the plot
    assert "Mục tiêu 2025: 100,0 %" in [s.text for s in chart.shapes]
    assert "95,3 %" in chart.desc and "mục tiêu 2025" in chart.label


def test_values_over_the_top_stay_in_the_plot_and_an_empty_trend_still_draws() -> None:
    over = charts.kpi_chart("x", {"2025Q1": 140.0}, 100.0, 2025)
    (bar,) = [s for s in over.shapes if s.kind == "rect"]
    assert bar.y >= charts.TOP
    empty = charts.kpi_chart("x", {}, 100.0, 2025)
    assert "chưa có số liệu" in empty.desc and not [s for s in empty.shapes if s.kind == "rect"]


def test_the_roadmap_chart_scales_to_a_round_maximum() -> None:
    years = [
        {"year": 2022, "planned": 34, "converted_in_year": 10},
        {"year": 2023, "planned": 34, "converted_in_year": 0},
    ]
    chart = charts.roadmap_chart(years)
    ticks = [s.text for s in chart.shapes if s.css == "tick" and s.anchor == "end"]
    assert ticks == ["0", "10", "20", "30", "40"]
    assert len([s for s in chart.shapes if s.kind == "rect"]) == 4
    assert "2022: kế hoạch 34, đã chuyển đổi 10" in chart.desc


def test_the_chart_macro_draws_an_accessible_svg() -> None:
    env = environment(ZoneInfo("Asia/Ho_Chi_Minh"))
    chart = charts.kpi_chart("Đài FM", {"2025Q4": 50.0}, 100.0, 2025)
    html = env.from_string('{% from "charts.html" import chart %}{{ chart(c, "k") }}').render(c=chart)
    svg = ET.fromstring(html[html.index("<svg") : html.index("</svg>") + 6])
    assert svg.get("role") == "img" and svg.get("aria-label") == chart.label
    assert svg.find(f"{SVG}title").text == chart.label  # type: ignore[union-attr]
    assert svg.find(f"{SVG}desc") is not None
    assert [line.get("stroke-dasharray") for line in svg.iter(f"{SVG}line") if line.get("data-target")] == ["8 5"]
    assert "style=" not in html  # the console's CSP allows no inline style


def test_csv_has_a_bom_a_vietnamese_header_and_no_formulas() -> None:
    rows = [{"year": 2025, "planned": 3, "planned_share_pct": 25.0, "planned_converted": 1, "converted_in_year": 1,
             "pending": ["=HYPERLINK(1)", "-1"]}]  # fmt: skip
    body = reports.to_csv(reports.ROADMAP_COLUMNS, rows)
    assert body.startswith("\ufeff".encode())
    parsed = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert parsed[0][:3] == ["Năm", "Kế hoạch (trạm)", "Tỷ lệ kế hoạch (%)"]
    assert parsed[1][-1] == "'=HYPERLINK(1) -1"
    assert reports._cell("-1") == "-1" and reports._cell("-x") == "'-x" and reports._cell("+1") == "'+1"


def test_kpi_csv_has_a_column_per_quarter() -> None:
    rows = [{"kpi": "fm_converted", "value": 50.0, "numerator": 1, "denominator": 2, "target": 100.0,
             "target_year": 2025, "trend": {"2025Q3": 20.0, "2025Q4": 50.0}}]  # fmt: skip
    parsed = list(csv.reader(io.StringIO(reports.to_csv(reports.kpi_columns(rows), rows).decode("utf-8-sig"))))
    assert parsed[0][-2:] == ["Quý 3/2025 (%)", "Quý 4/2025 (%)"]
    assert parsed[1][1] == "Đài FM đã chuyển đổi sang IP" and parsed[1][-3:] == ["Không", "20.0", "50.0"]


def test_every_kpi_of_the_projection_has_a_vietnamese_name() -> None:
    from keng.projections import kpi
    from keng.runtime.console.pages.reports import KPI_NAMES

    assert set(kpi.NAMES) == set(KPI_NAMES)
