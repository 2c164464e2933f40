"""Server-side SVG charts of the console's reports: a KPI's value at the end of each quarter against its 2025 target,
and the FM -> IP roadmap (stations planned and converted per year).

Hand-written because the charts are a few bars and lines: a charting library would bring JavaScript (forbidden by the
console's Content-Security-Policy without inline script) or a heavy server-side dependency for what is simple
arithmetic. The geometry is computed here; `templates/charts.html` draws it (autoescaped), with a <title>, a <desc>
and an aria-label, and every page shows the same numbers in a table next to each chart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from keng.runtime.console.labels import vn_number

WIDTH, HEIGHT = 480, 260
LEFT, RIGHT, TOP, BOTTOM = 52, 12, 30, 50


@dataclass(frozen=True)
class Shape:
    """One SVG element: kind is rect, line or text; css names its class (colours live in console.css)."""

    kind: str
    css: str
    x: float = 0.0
    y: float = 0.0
    w: float = 0.0
    h: float = 0.0
    x2: float = 0.0
    y2: float = 0.0
    text: str = ""
    anchor: str = "middle"
    tip: str = ""


@dataclass
class Chart:
    """An SVG chart: its accessible name, description and shapes."""

    label: str
    desc: str
    width: int = WIDTH
    height: int = HEIGHT
    shapes: list[Shape] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)  # (css class, label)


def percent(value: float) -> str:
    """A percentage (already in 0..100) the Vietnamese way: '95,3 %'."""
    return f"{vn_number(value, 1)} %"


def quarter_vi(quarter: str) -> str:
    """'2024Q2' -> 'Quý 2/2024'."""
    return f"Quý {quarter[5:]}/{quarter[:4]}"


def _nice_max(value: float) -> float:
    """A round axis maximum at or above `value` (1, 2, 5 times a power of ten)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)


def _axes(chart: Chart, top: float, ticks: list[float], fmt: str) -> None:
    """Horizontal grid lines with their labels on the y axis, and the x axis."""
    plot_h = chart.height - TOP - BOTTOM
    for t in ticks:
        y = TOP + plot_h * (1 - t / top)
        chart.shapes.append(Shape("line", "grid", x=LEFT, y=y, x2=chart.width - RIGHT, y2=y))
        label = percent(t).replace(",0 %", " %") if fmt == "percent" else vn_number(t)
        chart.shapes.append(Shape("text", "tick", x=LEFT - 6, y=y + 4, text=label, anchor="end"))
    base = chart.height - BOTTOM
    chart.shapes.append(Shape("line", "axis", x=LEFT, y=base, x2=chart.width - RIGHT, y2=base))
    chart.shapes.append(Shape("line", "axis", x=LEFT, y=TOP, x2=LEFT, y2=base))


def kpi_chart(name_vi: str, trend: dict[str, float], target: float, target_year: int) -> Chart:
    """Bars of a KPI's value at the end of each quarter (the current one: so far), with the target as a dashed line."""
    quarters = sorted(trend)
    values = ", ".join(f"{quarter_vi(q)}: {percent(trend[q])}" for q in quarters) or "chưa có số liệu"
    chart = Chart(
        label=f"Biểu đồ {name_vi} theo quý; mục tiêu {target_year}: {percent(target)}",
        desc=f"Giá trị cuối mỗi quý: {values}. Đường nét đứt: mục tiêu năm {target_year} ({percent(target)}).",
        legend=[("bar", "Giá trị cuối quý"), ("target", f"Mục tiêu {target_year}")],
    )
    top = 100.0
    _axes(chart, top, [0.0, 25.0, 50.0, 75.0, 100.0], "percent")
    plot_w, plot_h = chart.width - LEFT - RIGHT, chart.height - TOP - BOTTOM
    n = max(len(quarters), 1)
    slot = plot_w / n
    bar_w = min(slot * 0.6, 56.0)
    every = max(1, math.ceil(n / 8))  # at most 8 labels under the axis
    for i, q in enumerate(quarters):
        v = max(0.0, min(trend[q], top))
        h = plot_h * v / top
        x = LEFT + slot * i + (slot - bar_w) / 2
        tip = f"{quarter_vi(q)}: {percent(trend[q])}"
        chart.shapes.append(Shape("rect", "bar", x=x, y=TOP + plot_h - h, w=bar_w, h=h, tip=tip))
        chart.shapes.append(Shape("text", "value", x=x + bar_w / 2, y=TOP + plot_h - h - 4, text=percent(trend[q])))
        if i % every == 0:
            chart.shapes.append(
                Shape("text", "tick", x=x + bar_w / 2, y=chart.height - BOTTOM + 18, text=quarter_vi(q))
            )
    y = TOP + plot_h * (1 - min(target, top) / top)
    chart.shapes.append(Shape("line", "target", x=LEFT, y=y, x2=chart.width - RIGHT, y2=y,
                              tip=f"Mục tiêu {target_year}: {percent(target)}"))  # fmt: skip
    chart.shapes.append(Shape("text", "target-label", x=chart.width - RIGHT, y=y - 6,
                              text=f"Mục tiêu {target_year}: {percent(target)}", anchor="end"))  # fmt: skip
    chart.shapes.append(Shape("text", "axis-title", x=LEFT, y=chart.height - 8, text="Quý (cuối quý)", anchor="start"))
    return chart


def roadmap_chart(years: list[dict[str, int]]) -> Chart:
    """Per year: FM stations planned for conversion, and those converted in that year, side by side."""
    summary = "; ".join(f"{y['year']}: kế hoạch {y['planned']}, đã chuyển đổi {y['converted_in_year']}" for y in years)
    chart = Chart(
        label="Biểu đồ lộ trình chuyển đổi đài FM sang IP theo năm: kế hoạch và đã chuyển đổi",
        desc=f"Số trạm FM theo năm. {summary or 'Chưa có số liệu'}.",
        legend=[("bar-plan", "Kế hoạch (trạm)"), ("bar-done", "Đã chuyển đổi trong năm")],
    )
    step = max(1.0, _nice_max(max([max(y["planned"], y["converted_in_year"]) for y in years] or [0]) / 4))
    top = 4 * step
    _axes(chart, top, [step * i for i in range(5)], "number")
    plot_w, plot_h = chart.width - LEFT - RIGHT, chart.height - TOP - BOTTOM
    n = max(len(years), 1)
    slot = plot_w / n
    bar_w = min(slot * 0.35, 40.0)
    every = max(1, math.ceil(n / 10))
    for i, y in enumerate(years):
        x0 = LEFT + slot * i + slot / 2 - bar_w
        for j, (key, css, what) in enumerate((("planned", "bar-plan", "kế hoạch"),
                                              ("converted_in_year", "bar-done", "đã chuyển đổi"))):  # fmt: skip
            v = y[key]
            h = plot_h * v / top
            x = x0 + j * bar_w
            chart.shapes.append(Shape("rect", css, x=x, y=TOP + plot_h - h, w=bar_w - 2, h=h,
                                      tip=f"Năm {y['year']}, {what}: {vn_number(v)} trạm"))  # fmt: skip
            chart.shapes.append(Shape("text", "value", x=x + bar_w / 2 - 1, y=TOP + plot_h - h - 4, text=vn_number(v)))
        if i % every == 0:
            chart.shapes.append(Shape("text", "tick", x=x0 + bar_w, y=chart.height - BOTTOM + 18, text=str(y["year"])))
    chart.shapes.append(Shape("text", "axis-title", x=LEFT, y=chart.height - 8, text="Năm", anchor="start"))
    chart.shapes.append(Shape("text", "axis-title", x=LEFT, y=TOP - 12, text="Số trạm", anchor="start"))
    return chart
