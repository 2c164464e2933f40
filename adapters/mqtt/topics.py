"""The device protocol's topic names under an installation's topic root (`KENG_TOPIC_ROOT`, default `keng/v1`).

Several installations (districts, test and production) may share one broker: each has its own root, and nothing one
publishes or subscribes to lies under another's. Under the root (`<class>` is `speaker` or `board`):
- `<root>/cmd/<class>/area/<area code>`: group commands; the broker fans out to every device under the area;
- `<root>/cmd/<class>/ep/<endpoint code>`: one endpoint (retries, endpoints targeted one by one);
- `<root>/ack/<endpoint code>`: acknowledgements from the device (and `<root>/ack/~<client id>`, a dispatcher's
  ack barrier: endpoint codes never start with `~`);
- `<root>/status/<endpoint code>`: retained status, with a retained last will `offline`.

Kept apart from protocol.py (payloads, paho properties) so that reading the settings checks a root without loading
the MQTT stack.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_ROOT = "keng/v1"
MAX_ROOT_LEVELS = 5
_LEVEL = re.compile(r"[A-Za-z0-9_.-]{1,64}")
BARRIER_MARK = "~"  # endpoint codes start with a letter or digit (domain/area.check_code)


class TopicRootError(ValueError):
    """A topic root that is not 1 to 5 levels of letters, digits, `_`, `.` or `-` separated by `/`."""


def check_root(root: str) -> str:
    """The root, or TopicRootError naming what is wrong: no wildcards (`+`, `#`), no empty level (so no leading,
    trailing or doubled `/`), no `$` (reserved by brokers), at most 5 levels."""
    levels = root.split("/")
    if not root:
        raise TopicRootError("the topic root is empty (default: keng/v1)")
    if len(levels) > MAX_ROOT_LEVELS:
        raise TopicRootError(f"topic root {root!r} has {len(levels)} levels; at most {MAX_ROOT_LEVELS}")
    if "+" in root or "#" in root:
        raise TopicRootError(f"topic root {root!r}: no wildcards ('+', '#') in a root")
    if "" in levels:
        raise TopicRootError(f"topic root {root!r}: no leading, trailing or doubled '/'")
    for level in levels:
        if not _LEVEL.fullmatch(level):
            raise TopicRootError(f"topic root {root!r}: each level must be 1-64 of the characters A-Z a-z 0-9 _ . -")
    return root


def is_barrier_code(code: str) -> bool:
    """The code part of an ack topic names a barrier marker (this dispatcher's or another's), not a device."""
    return code.startswith(BARRIER_MARK)


@dataclass(frozen=True)
class Topics:
    """Every topic of one installation; `Topics()` is the default root's, `Topics(settings.topic_root)` the
    configured one's (checked when made)."""

    root: str = DEFAULT_ROOT

    def __post_init__(self) -> None:
        check_root(self.root)

    @property
    def ack_subscription(self) -> str:
        """Every endpoint's acks (and the dispatchers' barrier markers)."""
        return f"{self.root}/ack/+"

    @property
    def status_subscription(self) -> str:
        """Every endpoint's status."""
        return f"{self.root}/status/+"

    def area(self, cls: str, area: str) -> str:
        """Group command topic for every device of a class under an area (district, ward or residential group)."""
        return f"{self.root}/cmd/{cls}/area/{area}"

    def endpoint(self, cls: str, code: str) -> str:
        """Command topic of one endpoint."""
        return f"{self.root}/cmd/{cls}/ep/{code}"

    def ack(self, code: str) -> str:
        """Where an endpoint publishes its acks."""
        return f"{self.root}/ack/{code}"

    def status(self, code: str) -> str:
        """Where an endpoint publishes its retained status (and where its last will lands)."""
        return f"{self.root}/status/{code}"

    def device_subscriptions(self, cls: str, code: str, areas: list[str]) -> list[str]:
        """Topics a device subscribes to: its own, and the group topics of each area it belongs to."""
        return [self.endpoint(cls, code), *(self.area(cls, a) for a in areas)]

    def _tail(self, topic: str, kind: str) -> str | None:
        head = f"{self.root}/{kind}/"
        if not topic.startswith(head):
            return None
        code = topic[len(head) :]
        return code if code and "/" not in code else None

    def parse_ack(self, topic: str) -> str | None:
        """The endpoint code of an ack topic under this root, or None."""
        return self._tail(topic, "ack")

    def parse_status(self, topic: str) -> str | None:
        """The endpoint code of a status topic under this root, or None."""
        return self._tail(topic, "status")

    def barrier(self, client_id: str) -> str:
        """A dispatcher's ack barrier: a topic under its own ack subscription, so a marker it publishes there comes
        back behind every ack the broker already held for it."""
        return f"{self.root}/ack/{BARRIER_MARK}{client_id}"

    def is_barrier_topic(self, topic: str) -> bool:
        """An ack barrier marker (this dispatcher's or another's), not a device's ack."""
        return is_barrier_code(self.parse_ack(topic) or "")


DEFAULT_TOPICS = Topics()
