"""The sample district: Bắc Từ Liêm (Hà Nội), its 13 wards of 2022 with their official codes and approximate centres.

The ward list is real (General Statistics Office codes; centres good to a few hundred metres). Everything below a ward
is GENERATED, since residential-group counts are not published: residential groups (tổ dân phố), endpoints and their
install years and conditions are drawn from a fixed seed and every such record carries `generated=True`.
It sits among the adapters (it reads a packaged file) so that services/inventory.py can install it.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from importlib import resources
from typing import Any

DISTRICT: dict[str, Any] = {"code": "021", "name": "Quận Bắc Từ Liêm", "lat": 21.0702, "lon": 105.7669}
SEED = 2022

STAFF: list[dict[str, Any]] = [
    {"handle": "admin", "name": "Quản trị hệ thống", "roles": ["admin"], "wards": []},
    {"handle": "lan.nguyen", "name": "Nguyễn Thị Lan", "roles": ["drafter"], "wards": []},
    {"handle": "hung.tran", "name": "Trần Văn Hùng", "roles": ["approver"], "wards": []},
    {"handle": "minh.pham", "name": "Phạm Đức Minh", "roles": ["drafter", "approver"], "wards": []},
    {"handle": "ha.vu", "name": "Vũ Thu Hà", "roles": ["approver"], "wards": ["00595"]},
    {"handle": "tuan.do", "name": "Đỗ Anh Tuấn", "roles": ["drafter"], "wards": ["00595"]},
    {"handle": "mai.le", "name": "Lê Thị Mai", "roles": ["auditor"], "wards": []},
]


def wards() -> list[dict[str, Any]]:
    """The 13 wards (code, name, lat, lon) shipped with keng."""
    text = resources.files("keng.adapters").joinpath("data/bac_tu_liem_wards.csv").read_text(encoding="utf-8")
    return [
        {"code": r["code"], "name": f"Phường {r['ward']}", "lat": float(r["lat"]), "lon": float(r["lon"])}
        for r in csv.DictReader(text.splitlines())
    ]


def _jitter(rng: random.Random, value: float, spread: float) -> float:
    return round(value + rng.uniform(-spread, spread), 5)


def district_rows(groups_per_ward: tuple[int, int] = (10, 24)) -> Iterator[dict[str, Any]]:
    """Rows in the district-file format: city, district, wards, generated groups and generated endpoints."""
    rng = random.Random(SEED)
    yield {
        "record": "district",
        "code": DISTRICT["code"],
        "name": DISTRICT["name"],
        "lat": DISTRICT["lat"],
        "lon": DISTRICT["lon"],
    }
    for n in (1, 2):
        yield {
            "record": "endpoint",
            "code": f"021-LED{n}",
            "parent": "021",
            "kind": "eboard",
            "technology": "led-large-fiber",
            "installed_on": "2023-06-01",
            "condition": "good",
            "lat": _jitter(rng, DISTRICT["lat"], 0.004),
            "lon": _jitter(rng, DISTRICT["lon"], 0.004),
        }
    for ward in wards():
        code = ward["code"]
        yield {"record": "ward", "parent": DISTRICT["code"], **ward}
        yield {
            "record": "endpoint",
            "code": f"{code}-WEB",
            "parent": code,
            "kind": "portal",
            "technology": "https",
            "installed_on": "2021-01-01",
            "condition": "good",
        }
        for g in range(1, rng.randint(*groups_per_ward) + 1):
            yield from _group_rows(rng, ward, g)


def _group_rows(rng: random.Random, ward: dict[str, Any], g: int) -> Iterator[dict[str, Any]]:
    gcode = f"{ward['code']}-T{g:02d}"
    lat, lon = _jitter(rng, ward["lat"], 0.006), _jitter(rng, ward["lon"], 0.006)
    yield {
        "record": "group",
        "code": gcode,
        "parent": ward["code"],
        "name": f"Tổ dân phố số {g}",
        "lat": lat,
        "lon": lon,
    }
    # Most groups already have an IP loudspeaker; some still rely on the old FM receiver alone.
    if rng.random() < 0.8:
        for i in range(1, rng.choice((1, 1, 2)) + 1):
            yield {
                "record": "endpoint",
                "code": f"{gcode}-IP{i}",
                "parent": gcode,
                "kind": "ip-speaker",
                "technology": rng.choice(("ip-4g", "ip-wired", "ip-4g")),
                "installed_on": f"{rng.randint(2021, 2024)}-{rng.randint(1, 12):02d}-15",
                "condition": "good",
                "lat": _jitter(rng, lat, 0.001),
                "lon": _jitter(rng, lon, 0.001),
            }
    if rng.random() < 0.55:
        yield {
            "record": "endpoint",
            "code": f"{gcode}-FM1",
            "parent": gcode,
            "kind": "fm-speaker",
            "technology": "fm-wireless",
            "installed_on": f"{rng.randint(2010, 2020)}-0{rng.randint(1, 9)}-01",
            "condition": rng.choices(("good", "degraded", "broken"), weights=(5, 3, 2))[0],
            "lat": _jitter(rng, lat, 0.001),
            "lon": _jitter(rng, lon, 0.001),
        }
    if rng.random() < 0.4:
        yield {
            "record": "endpoint",
            "code": f"{gcode}-EB1",
            "parent": gcode,
            "kind": "eboard",
            "technology": rng.choice(("lcd-4g", "led-4g")),
            "installed_on": f"{rng.randint(2022, 2025)}-03-01",
            "condition": "good",
            "lat": _jitter(rng, lat, 0.001),
            "lon": _jitter(rng, lon, 0.001),
        }


def located_rows() -> Iterator[tuple[str, dict[str, str]]]:
    """The sample rows as (location, text fields), the shape the district-file validator takes."""
    for i, row in enumerate(district_rows(), start=1):
        yield f"sample row {i}", {k: "" if v is None else str(v) for k, v in row.items()}
