"""The console's pages, one module per family; each has `add_routes(console)`."""

from __future__ import annotations

from types import ModuleType

from keng.runtime.console.pages import devices, home, inbound, signin, stream

MODULES: tuple[ModuleType, ...] = (signin, home, stream, devices, inbound)
