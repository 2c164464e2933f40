"""Finding things in the store for several commands: the current catalog, a broadcast by its id or an id prefix, and
the admin check. Commands import these from here, never from each other's modules, so running one command loads
only its own module and these helpers."""

from __future__ import annotations

from uuid import UUID

from adapters.store.app import Keng
from adapters.store.errors import NotFound
from domain.broadcast import Broadcast
from domain.values import Role
from projections.catalog import Catalog


def catalog(app: Keng) -> Catalog:
    """Fold the whole log into current states (for list commands)."""
    return Catalog().fold(app.read_events())


def require_admin(app: Keng, handle: str) -> None:
    """Admin commands need an admin (the bootstrap `system` actor only exists for init and sample loading)."""
    app.staff(handle).require_role(Role.ADMIN, "administer staff and inventory")


def resolve_id(app: Keng, ref: str) -> UUID:
    """A full broadcast id, or a unique prefix of at least 6 hex digits."""
    try:
        return UUID(ref)
    except ValueError:
        pass
    prefix = ref.replace("-", "").lower()
    if len(prefix) < 6 or any(c not in "0123456789abcdef" for c in prefix):
        raise NotFound(f"{ref!r} is not a broadcast id (give the id or at least its first 6 hex digits)")
    matches = [b.id for b in catalog(app).of_type(Broadcast) if b.id.hex.startswith(prefix)]
    if len(matches) != 1:
        raise NotFound(f"{len(matches)} broadcasts have ids starting with {ref!r}; give more digits")
    return matches[0]
