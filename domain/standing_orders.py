"""Standing orders: rules under which a message from a trusted sender is approved at once (`AutoApproved`, naming
the rule), to be ratified or retracted by an approver afterwards.

A rule matches on the sending integration and, for CAP alerts, on the event class (CAP `category` or `event`),
severity and urgency; for city-source messages, on the priority class. Every listed condition must hold; an empty list
means "any". Example: {"name": "flood-storm-extreme", "senders": ["nchmf"], "events": ["Met", "flood", "storm"],
"severities": ["Extreme"], "urgencies": ["Immediate"]}.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from keng.domain.errors import InvalidValue

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,63}$")
_FIELDS = {"name", "senders", "events", "severities", "urgencies", "priorities"}


@dataclass(frozen=True)
class StandingOrder:
    """One rule. Matching is case-insensitive."""

    name: str
    senders: frozenset[str]
    events: frozenset[str] = frozenset()
    severities: frozenset[str] = frozenset()
    urgencies: frozenset[str] = frozenset()
    priorities: frozenset[str] = frozenset()

    def matches(
        self,
        *,
        sender: str,
        events: Iterable[str] = (),
        severity: str | None = None,
        urgency: str | None = None,
        priority: str | None = None,
    ) -> bool:
        """True when every condition of the rule holds for the message."""

        def ok(allowed: frozenset[str], values: Iterable[str | None]) -> bool:
            return not allowed or any(v is not None and v.lower() in allowed for v in values)

        return (
            sender.lower() in self.senders
            and ok(self.events, events)
            and ok(self.severities, [severity])
            and ok(self.urgencies, [urgency])
            and ok(self.priorities, [priority])
        )


def parse_orders(data: Any) -> list[StandingOrder]:
    """Validate a list of rule objects (from the standing-orders file); raise InvalidValue naming the problem."""
    if not isinstance(data, list):
        raise InvalidValue("standing orders must be a JSON list of rules")
    orders: list[StandingOrder] = []
    for i, rule in enumerate(data, start=1):
        if not isinstance(rule, Mapping):
            raise InvalidValue(f"standing order {i} is not an object")
        unknown = sorted(set(rule) - _FIELDS)
        if unknown:
            raise InvalidValue(f"standing order {i}: unknown field(s) {', '.join(unknown)}")
        name = rule.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise InvalidValue(f"standing order {i}: name must be 2-64 characters of a-z, 0-9 and '-'")
        lists = {}
        for key in _FIELDS - {"name"}:
            value = rule.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise InvalidValue(f"standing order {name}: {key} must be a list of strings")
            lists[key] = frozenset(v.lower() for v in value)
        if not lists["senders"]:
            raise InvalidValue(f"standing order {name}: senders must name at least one integration")
        orders.append(StandingOrder(name=name, **lists))
    if len({o.name for o in orders}) != len(orders):
        raise InvalidValue("standing order names must be unique")
    return orders


def first_match(orders: Iterable[StandingOrder], **message: Any) -> str | None:
    """The name of the first rule the message satisfies, or None."""
    return next((o.name for o in orders if o.matches(**message)), None)
