"""A table's parts: those awaiting load, a committed load counted once (commit_load.lua),
chunks reopened when their parts are gone from S3 (reopen_chunks.lua), and the objects no
load will read (orphans, what `ferry s3clean` deletes)."""
from __future__ import annotations

import json
import time
from typing import Any, Sequence

from common.model.records import PendingPart
from common.state.base import text
from common.state.runs import Runs


class Parts(Runs):
    def pending_parts(self) -> list[PendingPart]:
        """Committed parts not yet loaded, oldest run and chunk first."""
        parts = []
        for key, raw in self.r.hgetall(self.keys.pending).items():
            d = json.loads(raw)
            parts.append(PendingPart(key=text(key), run_id=d["run"], chunk=int(d["chunk"]),
                                     rows=int(d["rows"]), bytes=int(d["bytes"])))
        return sorted(parts, key=lambda p: (p.run_id, p.chunk, p.key))

    def commit_load(self, run_id: str, parts: Sequence[PendingPart]) -> tuple[int, int]:
        """Count a committed warehouse load once; returns (parts, rows) newly counted."""
        runs = sorted({p.run_id for p in parts})
        keys = [self.keys.state, self.keys.pending, self.keys.meta(run_id),
                self.keys.session(run_id, self.session(run_id))]
        keys += [self.keys.chunks(r) for r in runs]
        index = {r: i + len(keys) - len(runs) + 1 for i, r in enumerate(runs)}  # Lua's KEYS are 1-based
        payload = json.dumps([{"key": p.key, "k": index[p.run_id], "chunk": p.chunk} for p in parts])
        files, rows = self._script("commit_load", keys, [payload, int(time.time())])
        return int(files), int(rows)

    def reopen_chunks(self, run_id: str, numbers: Sequence[int], missing: Sequence[str]) -> int:
        """Put committed chunks whose parts are gone from S3 back to pending (reopen_chunks.lua);
        returns how many were reopened."""
        return int(self._script(
            "reopen_chunks",
            [self.keys.meta(run_id), self.keys.chunks(run_id), self.keys.state, self.keys.pending,
             self.keys.orphans],
            [json.dumps(sorted(numbers)), json.dumps(list(missing)), run_id, f"{time.time():.3f}"]))

    def discard_parts(self, keys: Sequence[str]) -> int:
        """Drop parts from "awaiting load" without counting them loaded (a full reload
        superseded them)."""
        return int(self.r.hdel(self.keys.pending, *keys)) if keys else 0

    def record_orphans(self, keys: Sequence[str], run_id: str, number: int, attempt_id: str,
                       reason: str, pipe: Any = None) -> None:
        """Note objects that no load will ever read (what `s3clean` deletes)."""
        if keys:
            info = json.dumps({"run": run_id, "chunk": number, "attempt": attempt_id,
                               "reason": reason, "at": round(time.time(), 3)})
            self._w(pipe).hset(self.keys.orphans, mapping={k: info for k in keys})

    def orphans(self) -> dict[str, dict[str, Any]]:
        """S3 key -> {run, chunk, attempt, reason, at} of every object noted as orphaned."""
        return {text(k): json.loads(v) for k, v in self.r.hgetall(self.keys.orphans).items()}
