"""A session's segments: the chunks dispatched together as one chord and its load. The
plan is appended segment by segment (append_plan.lua); each segment's load records that
it finished (segment_done.lua), and only the run's last one loads and ends it (`ending`)."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Sequence

from common.model import bounds
from common.model.bounds import Key
from common.model.records import FINAL_STATUSES
from common.state.base import StateBase, text

_FINALS_JSON = json.dumps(FINAL_STATUSES)


@dataclass(frozen=True)
class SegmentEnd:
    """What a finished segment means for its run: `last` when this caller ends the run; then
    `failed`, the cause, if a chunk of any segment failed for good, and `counts`, what every
    segment's chunks counted."""

    last: bool
    code: int
    failed: str = ""
    counts: tuple[dict[str, Any], ...] = ()


class Segments(StateBase):
    def claim_segment(self, run_id: str, session: int, segment: str, chunks: Sequence[int],
                      token: str) -> list[int] | None:
        """Claim the dispatch of chunks as a segment of the session (once per segment id):
        the chunks to send, or None if the segment was sent already or another task claimed
        it. The claiming task (token: its id survives redelivery) sends a claim it made but
        did not mark sent (segment_sent) once more: it may have died in between."""
        key = self.keys.segments(run_id, session)
        self.r.hsetnx(key, segment, json.dumps({"token": token, "chunks": list(chunks), "sent": False}))
        entry = json.loads(self.r.hget(key, segment) or "{}")
        if entry.get("token") != token or entry.get("sent"):
            return None
        return [int(n) for n in entry.get("chunks") or []]

    def unsent_segments(self, run_id: str, session: int, token: str) -> dict[str, list[int]]:
        """Segments this token claimed but did not mark sent (a plan task that died between)."""
        found = {}
        for seg, value in self.r.hgetall(self.keys.segments(run_id, session)).items():
            entry = json.loads(value)
            if entry.get("token") == token and not entry.get("sent"):
                found[text(seg)] = [int(n) for n in entry.get("chunks") or []]
        return found

    def segment_sent(self, run_id: str, session: int, segment: str, token: str, pipe: Any = None) -> None:
        self._script("segment_sent", [self.keys.segments(run_id, session)], [segment, token], pipe)

    def append_plan(self, run_id: str, session: int, expected_from: str,
                    ranges: Sequence[tuple[Key | None, Key]], done: bool, token: str,
                    rows_left: int | None = None) -> int | None:
        """Append a run's next planned chunks and claim their dispatch as one segment
        (append_plan.lua); the segment's id (its first chunk number), or None when the
        session no longer owns the run or planning moved on without this caller."""
        chunks = [{"lo": bounds.encode(lo), "hi": bounds.encode(hi), "state": "pending"} for lo, hi in ranges]
        code = int(self._script(
            "append_plan",
            [self.keys.lock, self.keys.meta(run_id), self.keys.chunks(run_id), self.keys.segments(run_id, session)],
            [run_id, session, expected_from, json.dumps(chunks), "1" if done else "",
             bounds.encode(ranges[-1][1]), token, _FINALS_JSON, f"{time.time():.3f}",
             "" if rows_left is None else rows_left]))
        return code if code >= 0 else None

    def segment_done(self, run_id: str, session: int, segment: str, counts: dict[str, Any],
                     task_id: str, failed: str = "") -> int:
        """Record a segment's finished chord (what it counted, or its failure); 1 when this
        task is the run's last and ends it, 0 when not, -1 for an unknown segment, -2 for a
        stale session (segment_done.lua)."""
        return int(self._script("segment_done", [self.keys.meta(run_id), self.keys.segments(run_id, session)],
                                [segment, json.dumps(counts), session, task_id, failed]))

    def end_segment(self, run_id: str, session: int, segment: str, counts: dict[str, Any],
                    task_id: str, failed: str = "") -> SegmentEnd:
        """The one rule that ends a segment (the run's load, the chord's error callback and
        the keep-alive's rescue all go through it): record it finished; if it is the run's
        last, say whether any segment failed (the run then fails with that cause) and what
        they all counted."""
        code = self.segment_done(run_id, session, segment, counts, task_id, failed)
        if code != 1:
            return SegmentEnd(last=False, code=code)
        segments = list(self.segments(run_id, session).values())
        failures = [s["failed"] for s in segments if s.get("failed")]
        return SegmentEnd(last=True, code=code, failed=failures[0] if failures else "",
                          counts=tuple(s.get("counts") or {} for s in segments))

    def segments(self, run_id: str, session: int) -> dict[str, dict[str, Any]]:
        """The session's segments: id -> {token, chunks, sent, counts (once finished), failed}."""
        raw = self.r.hgetall(self.keys.segments(run_id, session))
        return {text(k): json.loads(v) for k, v in raw.items()}
