"""Delivery rules that need no I/O: which acknowledgements count, and how a dispatch is summarised.

An ack is the device's word on what it did with one command. The dispatcher checks every ack against the live
dispatch before recording it; anything malformed, foreign or inconsistent is refused with a named reason (the reason
is a metric label), so that a misbehaving or hostile device changes no state.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from math import ceil
from typing import Any

from keng.domain.dispatch import ACK_STATES
from keng.domain.records import Ack, DispatchSummary, LatencySummary
from keng.domain.values import PLAYED_ACK_STATES, AckState

PROTOCOL_VERSION = 1
MAX_REASON = 200
_FAILED = AckState.FAILED  # read once: `check_ack` runs per ack (domain/values.py)


@dataclass(frozen=True)
class AckCheck:
    """The outcome of checking one ack: a record to store (`ack`), or the reason it was refused."""

    ack: Ack | None
    dispatch: str | None
    refused: str | None


def _refuse(reason: str, dispatch: str | None = None) -> AckCheck:
    return AckCheck(None, dispatch, reason)


def _aware_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def check_ack(
    topic_endpoint: str,
    message: Any,
    *,
    known_endpoints: Collection[str],
    targets_of: Mapping[str, Collection[str]],
    sha256_of: Mapping[str, Mapping[int, Collection[str]]],
    max_seq_of: Mapping[str, int],
) -> AckCheck:
    """Check an ack published on `keng/v1/ack/<topic_endpoint>` against the live dispatches.

    `targets_of`, `sha256_of` and `max_seq_of` are keyed by dispatch id (string): the targets, per item `seq` the
    hashes a `played` or `displayed` ack of that item may report (domain/dispatch.py `item_hashes`: the file's or the
    text's), and the highest command sequence sent. A `played` or `displayed` ack that reports anything else (or
    names a `seq` that is no item) is recorded as `failed` with reason `sha256-mismatch`: the device played something,
    but not what was approved.
    """
    if not isinstance(message, dict):
        return _refuse("malformed")
    if message.get("v") != PROTOCOL_VERSION:
        return _refuse("unsupported-version")
    claimed = message.get("endpoint", topic_endpoint)
    if claimed != topic_endpoint:
        return _refuse("endpoint-mismatch")
    if topic_endpoint not in known_endpoints:
        return _refuse("unknown-endpoint")
    dispatch = message.get("dispatch")
    if not isinstance(dispatch, str) or dispatch not in targets_of:
        return _refuse("unknown-dispatch")
    if topic_endpoint not in targets_of[dispatch]:
        return _refuse("not-targeted", dispatch)
    state, seq, at = message.get("state"), message.get("seq"), _aware_time(message.get("at"))
    if state not in ACK_STATES:
        return _refuse("bad-state", dispatch)
    if not isinstance(seq, int) or isinstance(seq, bool) or not 1 <= seq <= max_seq_of.get(dispatch, 1):
        return _refuse("bad-sequence", dispatch)
    if at is None:
        return _refuse("bad-time", dispatch)
    ack: Ack = {"endpoint": topic_endpoint, "state": state, "at": at.isoformat(), "seq": seq}
    sha = message.get("sha256")
    if sha is not None:
        if not isinstance(sha, str) or len(sha) != 64:
            return _refuse("bad-sha256", dispatch)
        ack["sha256"] = sha
    if state in PLAYED_ACK_STATES and dispatch in sha256_of and sha not in sha256_of[dispatch].get(seq, ()):
        ack["state"], ack["reason"] = _FAILED.value, "sha256-mismatch"
    elif state == _FAILED:
        reason = message.get("reason")
        ack["reason"] = reason[:MAX_REASON] if isinstance(reason, str) and reason else "unspecified"
    return AckCheck(ack, dispatch, None)


def percentile(sorted_values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of already sorted values (None when there are none)."""
    if not sorted_values:
        return None
    rank = max(1, ceil(p / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def latency_summary(latencies_ms: Iterable[float]) -> LatencySummary:
    """p50, p95, p99 and max of latencies in milliseconds, rounded to 0.1 ms."""
    values = sorted(latencies_ms)

    def r(v: float | None) -> float | None:
        return None if v is None else round(v, 1)

    return {
        "p50": r(percentile(values, 50)),
        "p95": r(percentile(values, 95)),
        "p99": r(percentile(values, 99)),
        "max": r(values[-1] if values else None),
        "count": len(values),
    }


def summarise(
    *,
    targets: Collection[str],
    states: Mapping[str, str],
    first_ack_at: Mapping[str, datetime],
    online: Collection[str],
    reference_at: datetime,
    priority: str,
    outcome: str,
    retries: int,
) -> DispatchSummary:
    """The closing summary of a dispatch: what each target did, and how fast commands arrived.

    `states` maps endpoint -> furthest acknowledged state; `first_ack_at` the device time of its first ack (any ack
    implies the command was received). Latency is measured from `reference_at` (the approval, or the programme slot
    for a scheduled broadcast). `online` is the endpoints known to be online during the dispatch; an endpoint that
    acknowledged was online by definition. `outcome` is complete, expired, settled or cancelled.
    """
    acked = [t for t in targets if t in states]
    counts: dict[str, int] = {s: 0 for s in ACK_STATES}
    for t in acked:
        counts[states[t]] += 1
    latencies = [
        max(0.0, (first_ack_at[t] - reference_at).total_seconds() * 1000.0) for t in acked if t in first_ack_at
    ]
    return {
        "outcome": str(outcome),  # plain, even when given a DispatchOutcome: the summary is stored and logged
        "targeted": len(targets),
        "online": len(set(online).union(acked).intersection(targets)),
        "received": len(acked),
        "playing": counts[AckState.PLAYING],
        "played": counts[AckState.PLAYED] + counts[AckState.DISPLAYED],  # a board's `displayed` is its `played`
        "failed": counts[AckState.FAILED],
        "unreachable": len(targets) - len(acked),
        "retries": retries,
        "latency_ms": {priority: latency_summary(latencies)},
    }
