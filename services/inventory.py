"""Inventory: areas and endpoints loaded from a district file or the sample district, the first admin of an empty
store, endpoints read as a reader's scope allows, and the equipment lifecycle (fault, repair, FM -> IP conversion,
decommissioning, a portal going live) recorded by an admin whose scope covers the endpoint.

A load is validated whole before anything is written (adapters/district_file.py plans it), then stored in one
transaction, or refused with every error. The collaborator is the application (`Keng`, the unit of work).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from pathlib import Path

import structlog

from keng.adapters import sample_district
from keng.adapters.district_file import DistrictFileError, plan_load, read_rows
from keng.adapters.official_units import load_official
from keng.adapters.store.app import Keng
from keng.domain.area import Area
from keng.domain.authority import Visibility
from keng.domain.endpoint import Endpoint
from keng.domain.errors import AreaEnded, UnknownArea
from keng.domain.ids import endpoint_id
from keng.domain.programme import VIETNAM_TZ
from keng.projections.catalog import Catalog
from keng.services.access import SYSTEM, enrol_by_system, require_admin
from keng.services.areas import apply_reorganisation, plan_reorganisation

log = structlog.get_logger(__name__)


def load_rows(
    app: Keng,
    rows: Iterable[tuple[str, dict[str, str]]],
    *,
    by: str,
    generated: bool = False,
    dry_run: bool = False,
) -> dict[str, int]:
    """Validate rows; store all of them in one transaction, or none and raise with every error. Returns the counts."""

    def existing_area(code: str) -> Area | None:
        """The unit holding `code` now; None for a code nobody holds, AreaEnded (naming the successors) for one
        whose unit has ended: a file's codes are today's."""
        try:
            return app.area(code)
        except AreaEnded:
            raise
        except UnknownArea:
            return None

    def stored_endpoint(code: str) -> Endpoint | None:
        return app.endpoint(code) if app.exists(endpoint_id(code)) else None

    plan = plan_load(
        rows,
        existing_area=existing_area,
        existing_endpoint=lambda c: app.exists(endpoint_id(c)),
        stored_endpoint=stored_endpoint,
        by=by,
        generated=generated,
        actor=None if by == SYSTEM else app.staff(by),
        today=today(app),
    )
    if plan.errors:
        shown = plan.errors[:50]
        more = f"\n  ... and {len(plan.errors) - 50} more" if len(plan.errors) > 50 else ""
        raise DistrictFileError(f"{len(plan.errors)} error(s); nothing was loaded:\n  " + "\n  ".join(shown) + more)
    if not dry_run:
        if plan.changed:  # lifecycle rows of endpoints already stored: one transaction with the new ones
            app.save_changes(*plan.aggregates, *plan.changed)
        else:
            app.save_new(*plan.aggregates, what="part of this inventory")
        log.info("district.loaded", actor=by, **plan.counts)
    return plan.counts


def load_district_file(app: Keng, path: Path, *, by: str, dry_run: bool = False) -> dict[str, int]:
    """Load a district file (docs/district-file.md) as an admin, or as `system`; with `dry_run`, only validate."""
    if by != SYSTEM:
        require_admin(app, by)
    return load_rows(app, read_rows(path), by=by, dry_run=dry_run)


def bootstrap_admin(app: Keng) -> None:
    """An empty store gets its first admin (`admin`), recorded as enrolled by `system`."""
    if app.max_position() == 0:
        enrol_by_system(app, handle="admin", name="Quản trị hệ thống", roles=["admin"])


def install_sample(app: Keng, *, reorganise: bool = True) -> dict[str, int]:
    """Load the sample district as registered in 2022 (Bắc Từ Liêm: district 021, 13 wards, generated groups and
    endpoints) and the sample staff, then (unless `reorganise` is False) record the reorganisation effective
    2025-07-01 from the official data (adapters/official_units.py) as `system`: today's wards are current, and the
    2022 structure stays replayable."""
    bootstrap_admin(app)
    counts = load_rows(app, sample_district.located_rows(), by=SYSTEM, generated=True)
    for member in sample_district.STAFF:
        if member["handle"] != "admin":
            enrol_by_system(app, **member)
    if reorganise:
        apply_reorganisation(app, plan_reorganisation(app, load_official(), by=SYSTEM))
    return counts


def readable_endpoints(
    catalog: Catalog, reader: Visibility, *, ward: str | None = None, kind: str | None = None
) -> list[Endpoint]:
    """The endpoints (of a ward, of a kind, when given) in wards that the reader's scope reaches."""
    return [e for e in catalog.endpoints(ward=ward, kind=kind) if reader.sees((e.ward,))]


def today(app: Keng) -> date:
    """Today in Vietnam by the application's clock: no lifecycle event is dated after it."""
    return app.clock().astimezone(VIETNAM_TZ).date()


def record_equipment_event(
    app: Keng,
    code: str,
    action: str,
    *,
    by: str,
    on: date | None = None,
    cost_vnd: int | None = None,
    detail: str = "",
    severity: str = "broken",
) -> Endpoint:
    """Record one lifecycle event of an endpoint (`domain.endpoint.LIFECYCLE_ACTIONS`) as the staff member `by`, dated
    `on` (default: today), with its cost in đồng; returns the endpoint as it now stands."""
    actor = app.staff(by)
    endpoint = app.endpoint(code)
    now = today(app)
    endpoint.record_lifecycle(action, actor=actor, on=on or now, today=now, cost_vnd=cost_vnd, detail=detail,
                              severity=severity)  # fmt: skip
    app.save_changes(endpoint)
    log.info("endpoint.lifecycle", actor=actor.handle, endpoint=endpoint.code, action=action, on=str(on or now),
             cost_vnd=cost_vnd)  # fmt: skip
    return endpoint
