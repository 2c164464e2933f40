"""Standing-order rules: parsing refuses malformed rules by name; matching needs every listed condition."""

from __future__ import annotations

import pytest

from keng.domain.errors import InvalidValue
from keng.domain.standing_orders import first_match, parse_orders

RULES = [
    {
        "name": "flood-extreme",
        "senders": ["kttv"],
        "events": ["Met", "lũ quét"],
        "severities": ["Extreme"],
        "urgencies": ["Immediate"],
    },
    {"name": "city-emergency", "senders": ["city-source"], "priorities": ["emergency"]},
]


def test_every_listed_condition_must_hold() -> None:
    orders = parse_orders(RULES)
    assert (
        first_match(orders, sender="KTTV", events=["met"], severity="Extreme", urgency="Immediate") == "flood-extreme"
    )
    assert first_match(orders, sender="kttv", events=["Met"], severity="Severe", urgency="Immediate") is None
    assert first_match(orders, sender="other", events=["Met"], severity="Extreme", urgency="Immediate") is None
    assert first_match(orders, sender="city-source", priority="emergency") == "city-emergency"
    assert first_match(orders, sender="city-source", priority="normal") is None


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ({}, "JSON list"),
        ([{"name": "x"}], "name must be"),
        ([{"name": "ok-rule"}], "senders must name"),
        ([{"name": "ok-rule", "senders": "kttv"}], "senders must be a list"),
        ([{"name": "ok-rule", "senders": ["a"], "colour": []}], "unknown field"),
        ([{"name": "ok-rule", "senders": ["a"]}, {"name": "ok-rule", "senders": ["b"]}], "unique"),
    ],
)
def test_malformed_rules_are_refused_by_name(rules: object, message: str) -> None:
    with pytest.raises(InvalidValue, match=message):
        parse_orders(rules)
