"""Encode + decode throughput of keng's orjson transcoder against the library's JSONTranscoder (same run, same events).

python bench/transcoder.py [--events 20000] [--json]
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import orjson
from eventsourcing.persistence import DatetimeAsISO, DecimalAsStr, JSONTranscoder, Transcoder, UUIDAsHex

from keng.adapters.store.transcoder import DateAsISO, OrjsonTranscoder


def sample_states(n: int) -> list[dict[str, Any]]:
    """Event states shaped like keng's: a Drafted broadcast, an Approved, and an ack batch of 50."""
    now = datetime(2026, 11, 27, 7, tzinfo=UTC)
    drafted = {
        "timestamp": now,
        "originator_topic": "domain.broadcast:Broadcast",
        "title": "Cảnh báo bão số 3",
        "text": "Bão số 3 đang tiến gần Hà Nội, đề nghị bà con chằng chống nhà cửa. " * 4,
        "audio": None,
        "priority": "emergency",
        "target_areas": ["021"],
        "target_endpoints": [],
        "scope": ["021"],
        "channels": ["speaker", "eboard", "portal", "app"],
        "schedule_at": [],
        "repeats": 3,
        "expires_at": now + timedelta(hours=6),
        "drill": False,
        "source_kind": "operator",
        "source_ref": None,
        "by": "lan.nguyen",
    }
    approved = {"timestamp": now, "by": "hung.tran", "revision": 0, "dispatch_id": uuid4()}
    acks = {
        "timestamp": now,
        "acks": [
            {"endpoint": f"00595-T{i:02d}-IP1", "state": "received", "at": now.isoformat(), "sha256": None}
            for i in range(50)
        ],
    }
    return [(drafted, approved, acks)[i % 3] for i in range(n)]


def measure(transcoder: Transcoder, states: list[dict[str, Any]]) -> tuple[float, float]:
    start = time.perf_counter()
    encoded = [transcoder.encode(s) for s in states]
    mid = time.perf_counter()
    for data in encoded:
        transcoder.decode(data)
    end = time.perf_counter()
    return len(states) / (mid - start), len(states) / (end - mid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    states = sample_states(args.events)
    fast, slow = OrjsonTranscoder(), JSONTranscoder()
    for t in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO(), DateAsISO()):
        fast.register(t)
        slow.register(t)
    measure(fast, states[:1000])  # warm-up
    measure(slow, states[:1000])
    enc_fast, dec_fast = measure(fast, states)
    enc_slow, dec_slow = measure(slow, states)
    result = {
        "events": args.events,
        "orjson_encode_per_s": round(enc_fast),
        "orjson_decode_per_s": round(dec_fast),
        "baseline_json_encode_per_s": round(enc_slow),
        "baseline_json_decode_per_s": round(dec_slow),
        "encode_ratio": round(enc_fast / enc_slow, 2),
        "decode_ratio": round(dec_fast / dec_slow, 2),
    }
    print(f"{'transcoder':<28}{'encode/s':>12}{'decode/s':>12}")
    print(f"{'keng orjson':<28}{enc_fast:>12,.0f}{dec_fast:>12,.0f}")
    print(f"{'baseline: library json':<28}{enc_slow:>12,.0f}{dec_slow:>12,.0f}")
    print(f"ratio (orjson / json): encode {result['encode_ratio']}x, decode {result['decode_ratio']}x")
    if args.json:
        print(orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
