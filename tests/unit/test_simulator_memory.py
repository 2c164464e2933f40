"""A simulated device's memory is bounded by what is live (runtime/demo/simulator.py): the de-duplication entries of
expired dispatches are forgotten, the journal keeps its last entries, and a live dispatch is never played twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from keng.adapters.mqtt import protocol as proto
from keng.runtime.demo.simulator import FORGET_AFTER, JOURNAL_KEEP
from tests.unit.test_simulator_contract import SPEAKER, command, deliver, device, until


def dispatch_id(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


async def test_a_device_forgets_expired_dispatches_and_keeps_its_journal_short_but_never_plays_a_live_one_twice() -> (
    None
):
    speaker, said = device(SPEAKER, proto.SPEAKER)
    for n in range(200):  # long expired: refused, each leaving a de-duplication entry
        deliver(speaker, proto.SPEAKER, command(proto.SPEAKER, expires_in_s=-FORGET_AFTER.total_seconds() - 60,
                                                dispatch=dispatch_id(n)))  # fmt: skip
    assert len(speaker.seen) == 200 and len(speaker.journal) == JOURNAL_KEEP
    live = deliver(speaker, proto.SPEAKER, command(proto.SPEAKER, dispatch=dispatch_id(999)))
    await until(said, "played")
    assert set(speaker.expiries) == {dispatch_id(n) for n in range(200)} | {live}
    speaker._pruned_at = float("-inf")  # the next message finds the pruning due (it is, every 30 s)
    deliver(speaker, proto.SPEAKER, command(proto.SPEAKER, dispatch=live))  # a resend of the live one
    assert {k[0] for k in speaker.seen} == {live} and set(speaker.expiries) == {live}
    assert speaker.plays[live] == 1  # re-acknowledged, not played again
    last = proto.decode(said.sent[-1][1])
    assert (last["state"], last["dispatch"]) == ("played", live)
    speaker.forget_expired(datetime.now(UTC) + FORGET_AFTER)  # not yet: it expires in 10 minutes
    assert {k[0] for k in speaker.seen} == {live}
    speaker.forget_expired(datetime.now(UTC) + timedelta(minutes=10) + 2 * FORGET_AFTER)  # long after its expiry
    assert not speaker.seen and not speaker.expiries and live not in speaker.plays
    assert len(speaker.journal) == JOURNAL_KEEP
