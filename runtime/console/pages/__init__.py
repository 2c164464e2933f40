"""The console's pages, one module per family; each has `add_routes(console)`."""

from __future__ import annotations

from types import ModuleType

from keng.runtime.console.pages import (
    approvals,
    audit,
    broadcast,
    broadcast_list,
    compose,
    home,
    reports,
    signin,
    stream,
)

MODULES: tuple[ModuleType, ...] = (signin, home, stream, broadcast_list, compose, broadcast, approvals, reports, audit)
