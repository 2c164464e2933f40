"""Stored topics do not depend on the import root.

keng's packages were importable as `domain`, `adapters`, ... until 2026-12 and are `keng.domain`, ... since. The event
store names each event's class by its topic (`domain.broadcast:Broadcast.Drafted`), and stored events are never
rewritten, so topics keep their first form: `stored_topic` drops the `keng.` root when events are written and
when topic-filtered reads name classes, and `register_import_root` teaches the library's `resolve_topic` that the old
module names now live under `keng.` (it resolves registered module prefixes), so every store reads the same.
"""

from __future__ import annotations

import importlib
from typing import Any

from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.utils import get_topic, register_topic

ROOT = "keng."
PACKAGES = ("domain", "adapters", "projections", "services", "runtime")


def stored_topic(obj: Any) -> str:
    """The topic under which a class is (and always was) stored: its library topic without the `keng.` root."""
    topic = get_topic(obj)
    return topic[len(ROOT) :] if topic.startswith(ROOT) else topic


def register_import_root() -> None:
    """Let stored topics such as `domain.broadcast:Broadcast.Drafted` resolve to `keng.domain.broadcast`. Idempotent."""
    for name in PACKAGES:
        try:
            module = importlib.import_module(ROOT + name)
        except ImportError:  # a package this installation does not have
            continue
        register_topic(name, module)  # registering the same module again is a no-op


class StableTopicMapper(Mapper[Any]):
    """The library's mapper, writing each event under its stable topic."""

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        stored = super().to_stored_event(domain_event)
        topic = stored.topic
        if not topic.startswith(ROOT):
            return stored
        return StoredEvent(
            originator_id=stored.originator_id,
            originator_version=stored.originator_version,
            topic=topic[len(ROOT) :],
            state=stored.state,
        )
