"""The console's pages, one module per family; each has `add_routes(console)`."""

from __future__ import annotations

from types import ModuleType

from keng.runtime.console.pages import (
    approvals,
    audit,
    broadcast,
    broadcast_list,
    compose,
    devices,
    home,
    inbound,
    reports,
    signin,
    stream,
)

MODULES: tuple[ModuleType, ...] = (
    signin,
    home,
    stream,
    broadcast_list,
    compose,
    broadcast,
    approvals,
    devices,
    inbound,
    reports,
    audit,
)
