"""Ranges the warehouse refused. A chunk whose parts a load could not take (a value its
column cannot hold, a constraint, a key that is not unique) waits here: its parts stay
awaiting load, every later load tries them again on their own (after the fix, they load),
and every other part keeps loading. `ferry watermark skip-range` gives up on one for good,
recorded here and on its run."""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from typing import Sequence

import redis

from common.errors import RefusedError
from common.state.base import StateBase
from common.model.records import PendingPart


@dataclass(frozen=True)
class Refusal:
    """One refused chunk: where it is, what the warehouse said, and its fate."""

    run_id: str
    chunk: int
    lo: str
    hi: str
    rows: int
    parts: tuple[str, ...]
    error: str
    column: str | None
    first_at: float
    last_at: float
    times: int = 1
    skipped_at: float | None = None
    reason: str = ""

    @property
    def ident(self) -> str:
        return f"{self.run_id}:{self.chunk}"

    def describe(self, table: str) -> str:
        column = f", column {self.column}" if self.column else ""
        return (f"table {table}: the warehouse refused chunk {self.chunk} of run {self.run_id} (key range "
                f"({self.lo}, {self.hi}], {self.rows:,} rows{column}): {self.error}")

    @classmethod
    def from_json(cls, raw: str | bytes) -> "Refusal":
        d = json.loads(raw)
        d["parts"] = tuple(d.get("parts") or ())
        return cls(**d)


class Refusals(StateBase):
    """The refused and the skipped chunks of one pipeline table."""

    def __init__(self, client: redis.Redis, pipeline: str, table: str) -> None:
        super().__init__(client, pipeline, table)
        self.key = self.keys.refused
        self.skipped_key = self.keys.skipped

    def waiting(self) -> dict[tuple[str, int], Refusal]:
        """(run, chunk) -> the refusal of every chunk that waits."""
        found = (Refusal.from_json(v) for v in self.r.hvals(self.key))
        return {(f.run_id, f.chunk): f for f in sorted(found, key=lambda f: (f.run_id, f.chunk))}

    def skipped(self) -> list[Refusal]:
        return sorted((Refusal.from_json(v) for v in self.r.hvals(self.skipped_key)),
                      key=lambda f: (f.run_id, f.chunk))

    def record(self, run_id: str, chunk: int, lo: str, hi: str, parts: Sequence[PendingPart],
               err: RefusedError) -> Refusal:
        """Note (again) that the warehouse refused a chunk's parts."""
        now = round(time.time(), 3)
        raw = self.r.hget(self.key, f"{run_id}:{chunk}")
        before = Refusal.from_json(raw) if raw is not None else None
        refusal = Refusal(run_id=run_id, chunk=chunk, lo=lo, hi=hi, rows=sum(p.rows for p in parts),
                          parts=tuple(p.key for p in parts), error=str(err)[:2000], column=err.column,
                          first_at=before.first_at if before else now, last_at=now,
                          times=(before.times + 1) if before else 1)
        self.r.hset(self.key, refusal.ident, json.dumps(asdict(refusal)))
        return refusal

    def clear(self, run_id: str, chunk: int) -> bool:
        """A load took the chunk after all."""
        return bool(self.r.hdel(self.key, f"{run_id}:{chunk}"))

    def skip(self, refusal: Refusal, reason: str) -> Refusal:
        """Give up on a refused chunk: its parts leave "awaiting load" without being counted
        loaded (counted skipped instead), and the decision is kept on the table and its run."""
        done = replace(refusal, skipped_at=round(time.time(), 3), reason=reason)
        pending, state, meta = self.keys.pending, self.keys.state, self.keys.meta(refusal.run_id)
        with self.r.pipeline(transaction=True) as tx:
            if refusal.parts:
                tx.hdel(pending, *refusal.parts)
            tx.hdel(self.key, refusal.ident)
            tx.hset(self.skipped_key, refusal.ident, json.dumps(asdict(done)))
            for key in refusal.parts:  # (for `ferry s3clean`)
                tx.hset(self.keys.orphans, key, json.dumps(
                    {"run": refusal.run_id, "chunk": refusal.chunk, "reason": "range skipped by the operator",
                     "at": done.skipped_at}))
            tx.hincrby(state, "rows_skipped", refusal.rows)
            tx.hincrby(state, "files_skipped", len(refusal.parts))
            tx.hset(meta, f"skipped:{refusal.chunk}", json.dumps({"at": done.skipped_at, "reason": reason,
                                                                   "rows": refusal.rows}))
            tx.execute()
        return done
