"""Recompute the chain from the stored records and compare it with the stored links, the signed checkpoints and,
when given, a checkpoint exported earlier and kept off the machine. See docs/audit.md for what each can prove."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from keng.adapters.audit.chain import (
    GENESIS,
    RECORD_HEAD,
    Checkpoint,
    checkpoint_message,
    ensure_tables,
    id_bytes,
    iter_chain,
    load_checkpoints,
)
from keng.adapters.audit.keys import Signer, key_id, verify_signature
from keng.adapters.readstore.sql import SqlDb, select_records

EXPORT_FORMAT = "keng-audit-checkpoint/1"
PREFIX = 8  # bytes of each link kept in an export: enough to name the first differing event


@dataclass(frozen=True)
class Exported:
    """A checkpoint exported with `keng audit checkpoint export`: the signed head plus a short prefix of every link."""

    checkpoint: Checkpoint
    prefixes: bytes

    def to_json(self) -> bytes:
        k = self.checkpoint
        return orjson.dumps(
            {
                "format": EXPORT_FORMAT,
                "position": k.position,
                "count": k.count,
                "link": k.link.hex(),
                "signed_at": k.signed_at,
                "key_id": k.key_id,
                "public_key": k.public_key.hex(),
                "signature": k.signature.hex(),
                "link_prefixes": base64.b64encode(self.prefixes).decode(),
            },
            option=orjson.OPT_INDENT_2,
        )

    @classmethod
    def from_json(cls, data: bytes) -> Exported:
        d = orjson.loads(data)
        if d.get("format") != EXPORT_FORMAT:
            raise ValueError(f"not a keng checkpoint export (format {d.get('format')!r})")
        k = Checkpoint(
            d["position"], d["count"], bytes.fromhex(d["link"]), d["signed_at"], d["key_id"],
            bytes.fromhex(d["public_key"]), bytes.fromhex(d["signature"]),
        )  # fmt: skip
        return cls(k, base64.b64decode(d["link_prefixes"]))


def export_checkpoint(db: SqlDb) -> Exported:
    """The newest stored checkpoint with the prefixes of every link up to it."""
    ensure_tables(db)
    checkpoints = load_checkpoints(db)
    if not checkpoints:
        raise ValueError("nothing is sealed yet: start the service (`keng serve`) or run `keng audit seal`")
    head = checkpoints[-1]
    prefixes = b"".join(link[:PREFIX] for _, link in iter_chain(db, upto=head.position))
    return Exported(head, prefixes)


@dataclass
class Finding:
    position: int
    problem: str


@dataclass
class Report:
    events: int = 0
    sealed: int = 0
    unsealed: int = 0
    chained: int = 0
    checkpoints: int = 0
    key_id: str = ""
    findings: list[Finding] = field(default_factory=list)
    more_findings: int = 0

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def first_bad_position(self) -> int | None:
        return min((f.position for f in self.findings), default=None)

    def add(self, position: int, problem: str) -> None:
        if len(self.findings) < 100:
            self.findings.append(Finding(position, problem))
        else:
            self.more_findings += 1

    def as_dict(self) -> dict[str, Any]:
        first = self.first_bad_position
        return {
            "ok": self.ok,
            "first_bad_position": first,
            "events": self.events,
            "sealed": self.sealed,
            "unsealed": self.unsealed,
            "chained": self.chained,
            "checkpoints": self.checkpoints,
            "key_id": self.key_id,
            "findings": [{"position": f.position, "problem": f.problem} for f in sorted_findings(self)],
            "more_findings": self.more_findings,
        }


def sorted_findings(report: Report) -> list[Finding]:
    return sorted(report.findings, key=lambda f: f.position)


def _records(db: SqlDb, events_table: str, page: int = 50_000) -> Iterator[tuple[int, bytes]]:
    """(position, framed record bytes) of every stored event in global order, read in large pages of plain tuples."""
    after, to_bytes, topics = 0, id_bytes(db), dict[str, bytes]()
    head = RECORD_HEAD.pack
    while True:
        rows = select_records(db, events_table, after, page)
        if not rows:
            return
        for pos, oid, version, topic, state in rows:
            t = topics.get(topic)
            if t is None:
                t = topics[topic] = topic.encode()
            yield pos, head(pos, version, len(t)) + to_bytes(oid) + t + state
        after = rows[-1][0]


def _check_signatures(report: Report, checkpoints: list[Checkpoint], signer: Signer) -> None:
    for k in checkpoints:
        if k.public_key != signer.public:
            report.add(k.position, f"checkpoint signed by key {k.key_id}, not the district key {signer.key_id}")
        elif not verify_signature(signer.public, checkpoint_message(k.position, k.count, k.link, k.signed_at),
                                  k.signature):  # fmt: skip
            report.add(k.position, "checkpoint signature is not valid")


def _check_export(report: Report, exported: Exported, signer: Signer) -> None:
    k = exported.checkpoint
    message = checkpoint_message(k.position, k.count, k.link, k.signed_at)
    if key_id(k.public_key) != k.key_id or not verify_signature(k.public_key, message, k.signature):
        raise ValueError("the exported checkpoint's own signature is not valid: the export file is damaged")
    if k.public_key != signer.public:
        report.add(k.position, f"district key replaced: export signed by {k.key_id}, store uses {signer.key_id}")


def verify(db: SqlDb, events_table: str, signer: Signer, exported: Exported | None = None) -> Report:
    """Recompute and compare everything; findings name positions, the first of which is the first bad one. An event
    is *sealed* when it is linked and a signed checkpoint at or after it exists; linked events after the newest
    checkpoint, and a tail of events recorded with chaining off, are *unsealed*, not bad."""
    ensure_tables(db)
    report = Report(key_id=signer.key_id)
    checkpoints = load_checkpoints(db)
    report.checkpoints = len(checkpoints)
    _check_signatures(report, checkpoints, signer)
    by_pos = {k.position: k for k in checkpoints}
    if exported is not None:
        _check_export(report, exported, signer)
    prefixes, n_exported = (exported.prefixes, exported.checkpoint.count) if exported else (b"", 0)
    sha = hashlib.sha256
    covered = max((k.position for k in checkpoints), default=0)
    chain = iter_chain(db, page=50_000)
    nxt = next(chain, None)
    nxt_pos = nxt[0] if nxt is not None else None
    prev, ordinal, last_pos, last_cp = GENESIS, 0, 0, 0
    unlinked: list[int] = []  # events without a link since the last linked one
    for pos, record in _records(db, events_table):
        while nxt is not None and nxt[0] < pos:
            report.add(nxt[0], "chained event is missing from the store (deleted or moved)")
            prev, nxt = nxt[1], next(chain, None)
            nxt_pos = nxt[0] if nxt is not None else None
        link = sha(prev + record).digest()
        ordinal += 1
        if nxt_pos == pos:
            report.chained += 1
            report.sealed += pos <= covered
            if nxt[1] != link:  # type: ignore[index]
                report.add(pos, "stored event does not match its chain link (changed, swapped or inserted)")
                link = nxt[1]  # type: ignore[index]  # resynchronise, so that each tampered event is named once
            nxt = next(chain, None)
            nxt_pos = nxt[0] if nxt is not None else None
            for p in unlinked:  # links are made in order, so a linked event after unlinked ones means insertion
                report.add(p, "event has no chain link although later events are chained (inserted)")
            unlinked.clear()
        elif pos <= covered:
            report.add(pos, "event has no chain link although a signed checkpoint covers it (inserted)")
        else:
            unlinked.append(pos)
        if pos in by_pos:
            k = by_pos[pos]
            if k.link != link or k.count != ordinal:
                report.add(pos, f"signed checkpoint does not match the chain: rewritten within {last_cp + 1}..{pos}")
            last_cp = pos
        if ordinal <= n_exported and prefixes[(ordinal - 1) * PREFIX : ordinal * PREFIX] != link[:PREFIX]:
            report.add(pos, "event differs from the exported checkpoint")
        prev, last_pos = link, pos
    while nxt is not None:
        report.add(nxt[0], "chained event is missing from the store (deleted)")
        nxt = next(chain, None)
    for k in checkpoints:
        if k.position > last_pos:
            report.add(last_pos + 1, f"signed checkpoint at {k.position} names events the store no longer has")
    if ordinal < n_exported:
        report.add(last_pos + 1, f"store ends after {ordinal} events; the exported checkpoint vouches {n_exported}")
    report.events = ordinal
    report.unsealed = ordinal - report.sealed
    return report
