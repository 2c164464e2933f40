"""Loading inventory into the store: district files and the sample district, validated before anything is written."""

from __future__ import annotations

from collections.abc import Iterable

import structlog

from adapters.district_file import DistrictFileError, plan_load
from adapters.store.app import Keng
from domain.area import Area
from domain.errors import UnknownArea
from domain.ids import endpoint_id
from runtime.demo import sample

log = structlog.get_logger(__name__)
SYSTEM = "system"


def load_rows(
    app: Keng,
    rows: Iterable[tuple[str, dict[str, str]]],
    *,
    by: str,
    generated: bool = False,
    dry_run: bool = False,
) -> dict[str, int]:
    """Validate rows; store all of them in one transaction, or none and raise with every error."""

    def existing_area(code: str) -> Area | None:
        try:
            return app.area(code)
        except UnknownArea:
            return None

    plan = plan_load(
        rows,
        existing_area=existing_area,
        existing_endpoint=lambda c: app.exists(endpoint_id(c)),
        by=by,
        generated=generated,
    )
    if plan.errors:
        shown = plan.errors[:50]
        more = f"\n  ... and {len(plan.errors) - 50} more" if len(plan.errors) > 50 else ""
        raise DistrictFileError(f"{len(plan.errors)} error(s); nothing was loaded:\n  " + "\n  ".join(shown) + more)
    if not dry_run:
        app.save_new(*plan.aggregates, what="part of this inventory")
        log.info("district.loaded", actor=by, **plan.counts)
    return plan.counts


def bootstrap_admin(app: Keng) -> None:
    """An empty store gets its first admin (`admin`), recorded as enrolled by `system`."""
    if app.max_position() == 0:
        app.enrol_staff(handle="admin", name="Quản trị hệ thống", roles=["admin"], by=SYSTEM)


def install_sample(app: Keng) -> dict[str, int]:
    """Load the sample district (Bắc Từ Liêm, generated groups and endpoints) and the sample staff."""
    bootstrap_admin(app)
    counts = load_rows(app, sample.located_rows(), by=SYSTEM, generated=True)
    for member in sample.STAFF:
        if member["handle"] != "admin":
            app.enrol_staff(by=SYSTEM, **member)
    return counts
