"""A small reorganisation built by hand with the domain's own commands, for tests of areas as dated facts.

Before 2025-07-01 (registered, in force since always): city 01, district 021 with three wards
  00595 Phường Thượng Cát (group 00595-T01), 00598 Phường Liên Mạc (group 00598-T01),
  00613 Phường Minh Khai (groups 00613-T01 near today's Tây Tựu, 00613-T02 near today's Đông Ngạc; portal 00613-WEB);
each group with one IP speaker (`<group>-IP1`), and 00613-T02 also an FM receiver (`00613-T02-FM1`).
On 2025-07-01, as the 2025 reform did: old 00595 and old 00598 merge into a new 00598 Phường Thượng Cát (a reused code);
old 00613 Minh Khai is divided between a new 00613 Phường Tây Tựu (a reused code) and 00602 Phường Đông Ngạc; district
021 is dissolved; the groups and endpoints move with their ground; the staff member scoped to old 00613 is carried over
to both of its successors. The real reform (from the package data) is recorded by services/areas.py; this one is small
enough to count by hand.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from keng.adapters.store.app import Keng
from keng.domain.area import Area, day_start
from keng.domain.endpoint import Endpoint
from keng.domain.staff import Staff

REFORM = "2025-07-01"
BEFORE = day_start("2025-06-30")  # an instant of the old structure
AFTER = day_start(REFORM)  # the first instant of the new one
BY = "system"

OLD_WARDS = {"00595": "Phường Thượng Cát", "00598": "Phường Liên Mạc", "00613": "Phường Minh Khai"}
NEW_WARDS = {"00598": "Phường Thượng Cát", "00602": "Phường Đông Ngạc", "00613": "Phường Tây Tựu"}
GROUPS = {  # group -> (old ward, new ward, lat, lon)
    "00595-T01": ("00595", "00598", 21.0963, 105.7380),
    "00598-T01": ("00598", "00598", 21.0831, 105.7557),
    "00613-T01": ("00613", "00613", 21.0642, 105.7390),
    "00613-T02": ("00613", "00602", 21.0740, 105.7740),
}


def build_before(app: Keng) -> dict[str, Any]:
    """Record the old structure with its endpoints and two staff members; returns the aggregates by code."""
    city = Area.register(code="01", name="Thành phố Hà Nội", level="city", parent=None, by=BY)
    district = Area.register(code="021", name="Quận Bắc Từ Liêm", level="district", parent=city, by=BY)
    wards = {c: Area.register(code=c, name=n, level="ward", parent=district, by=BY) for c, n in OLD_WARDS.items()}
    groups = {
        g: Area.register(code=g, name=f"Tổ dân phố {g[-2:]}", level="group", parent=wards[w], lat=lat, lon=lon, by=BY)
        for g, (w, _, lat, lon) in GROUPS.items()
    }
    endpoints = {
        f"{g}-IP1": Endpoint.register(
            code=f"{g}-IP1", kind="ip-speaker", ward=w, group=g, technology="ip-4g", lat=lat, lon=lon, by=BY
        )
        for g, (w, _, lat, lon) in GROUPS.items()
    }
    endpoints["00613-T02-FM1"] = Endpoint.register(
        code="00613-T02-FM1", kind="fm-speaker", ward="00613", group="00613-T02", technology="fm-wireless", by=BY
    )
    endpoints["00613-WEB"] = Endpoint.register(
        code="00613-WEB", kind="portal", ward="00613", group=None, technology="https", lat=21.0745, lon=105.7735, by=BY
    )
    staff = {
        "ward.staff": Staff.enrol(handle="ward.staff", name="Cán bộ phường", roles=["drafter"], wards=["00613"], by=BY),
        "district.staff": Staff.enrol(handle="district.staff", name="Cán bộ quận", roles=["approver"], wards=[], by=BY),
    }
    app.save_new(city, district, *wards.values(), *groups.values(), *endpoints.values(), *staff.values(),
                 what="the old structure")  # fmt: skip
    return {"city": city, "district": district, "wards": wards, "groups": groups, "endpoints": endpoints,
            "staff": staff}  # fmt: skip


def reorganise(app: Keng, old: dict[str, Any]) -> dict[str, Area]:
    """Record the 2025-07-01 reorganisation of `build_before`'s structure; returns the new wards by code."""
    city, wards = old["city"], old["wards"]
    basis = "Nghị quyết 1656/NQ-UBTVQH15 (test)"
    new = {
        "00598": Area.establish(code="00598", name=NEW_WARDS["00598"], level="ward", parent=city, effective=REFORM,
                                predecessors=["00595", "00598"], lat=21.0866, lon=105.75, basis=basis, by=BY),
        "00602": Area.establish(code="00602", name=NEW_WARDS["00602"], level="ward", parent=city, effective=REFORM,
                                predecessors=["00613"], lat=21.075, lon=105.776, basis=basis, by=BY),
        "00613": Area.establish(code="00613", name=NEW_WARDS["00613"], level="ward", parent=city, effective=REFORM,
                                predecessors=["00613"], lat=21.0642, lon=105.739, basis=basis, by=BY),
    }  # fmt: skip
    wards["00595"].end("merged", successors=["00598"], effective=REFORM, basis=basis, by=BY)
    wards["00598"].end("merged", successors=["00598"], effective=REFORM, basis=basis, by=BY)
    wards["00613"].end("divided", successors=["00602", "00613"], effective=REFORM, basis=basis, by=BY)
    old["district"].end("dissolved", successors=sorted(new), effective=REFORM, basis=basis, by=BY)
    for g, (_, to, _, _) in GROUPS.items():
        old["groups"][g].move(new[to], effective=REFORM, basis=basis, by=BY)
    for e in old["endpoints"].values():
        to = GROUPS[e.group][1] if e.group else "00602"  # the portal stands nearest Đông Ngạc's centre
        e.reassign(ward=to, group=e.group, effective=REFORM, how="coordinates", by=BY)
    reason = "00613 (Phường Minh Khai) divided: 00602, 00613"
    old["staff"]["ward.staff"].carry_scope_over(["00602", "00613"], effective=REFORM, reason=reason, by=BY)
    app.save_new(*new.values(), what="the new wards")
    app.save_changes(*wards.values(), old["district"], *old["groups"].values(), *old["endpoints"].values(),
                     old["staff"]["ward.staff"])  # fmt: skip
    return new


def build_reformed(app: Keng) -> dict[str, Any]:
    """The old structure and its reorganisation, recorded; returns `build_before`'s dict plus `new`."""
    old = build_before(app)
    old["new"] = reorganise(app, old)
    return old


def instant(text: str) -> datetime:
    """A day (00:00 Vietnam time) or an ISO instant."""
    return day_start(text) if len(text) == 10 else datetime.fromisoformat(text)
