"""The current catalog, for the list commands. Commands import shared helpers from here (or from services/), never
from each other's modules, so running one command loads only its own module and these helpers."""

from __future__ import annotations

from keng.adapters.store.app import Keng
from keng.projections.catalog import Catalog


def catalog(app: Keng) -> Catalog:
    """Fold the whole log into current states (for list commands)."""
    return Catalog().fold(app.read_events())
