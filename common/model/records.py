"""The records a run is made of, as ferry's state holds them: run statuses, planned chunks,
parts written and parts awaiting load. Pure data: no I/O."""
from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any

from common.model import bounds
from common.model.bounds import Key


class RunStatus(str, enum.Enum):
    """A run's `status` field. Lua scripts receive the final ones (FINAL_STATUSES) as an
    argument, and tests/test_state_scripts.py checks that every status a script writes or
    compares is one of these."""

    QUEUED = "queued"
    PLANNING = "planning"
    EXTRACTING = "extracting"
    LOADING = "loading"
    SUCCEEDED = "succeeded"
    EXTRACTED = "extracted"
    """Every chunk extracted by an --extract-only run (its parts await a later load)."""
    FAILED = "failed"
    ABANDONED = "abandoned"
    """`watermark set` gave it up: never resumed, its parts never loaded."""
    CANCELLED = "cancelled"
    REPLANNED = "replanned"
    """The source schema changed under it: its committed parts stay, the rest is planned again."""

    def __str__(self) -> str:
        return self.value


# A run in one of these is over: no attempt starts, no chunk commits, no lock is renewed.
FINAL = frozenset({RunStatus.SUCCEEDED, RunStatus.EXTRACTED, RunStatus.FAILED, RunStatus.ABANDONED,
                   RunStatus.CANCELLED, RunStatus.REPLANNED})
FINAL_STATUSES = tuple(s.value for s in RunStatus if s in FINAL)
# Over, and not to be resumed by a sync: a failed run is (a cancelled one only by `ferry retry`).
NOT_RESUMED = frozenset({RunStatus.SUCCEEDED, RunStatus.EXTRACTED, RunStatus.ABANDONED,
                         RunStatus.REPLANNED, RunStatus.CANCELLED})
# Left alone by `watermark set`: what they extracted is whole.
ENDED_WHOLE = frozenset({RunStatus.SUCCEEDED, RunStatus.EXTRACTED, RunStatus.ABANDONED})


def is_final(status: str | None) -> bool:
    return status in FINAL_STATUSES


@dataclass(frozen=True)
class Part:
    """One uploaded Parquet object."""

    key: str
    rows: int
    bytes: int


@dataclass(frozen=True)
class PendingPart:
    """A committed part that no committed load contains yet."""

    key: str
    run_id: str
    chunk: int
    rows: int
    bytes: int


@dataclass(frozen=True)
class Chunk:
    """A planned chunk and what its extraction committed."""

    number: int
    lo: Key | None
    hi: Key
    state: str
    rows: int
    bytes: int
    parts: tuple[str, ...]
    worker: str
    committed_at: float | None
    fence: str = ""
    """The attempt allowed to commit (set when an attempt starts)."""
    attempt: str = ""
    """The attempt whose parts were committed."""
    attempts: int = 0
    error: str = ""
    started_at: float | None = None
    """When the latest attempt took the fence."""
    attempt_worker: str = ""
    error_session: int = 0
    """The session whose attempt failed with `error`."""
    reconcile: dict[str, Any] | None = None
    """A reconcile range's findings (counts, first keys), committed with it."""

    @classmethod
    def from_json(cls, number: int, raw: str | bytes) -> "Chunk":
        d = json.loads(raw)
        return cls(number=number, lo=bounds.decode(d["lo"]), hi=bounds.decode(d["hi"]),  # type: ignore[arg-type]
                   state=d["state"], rows=int(d.get("rows") or 0), bytes=int(d.get("bytes") or 0),
                   parts=tuple(d.get("parts") or ()), worker=d.get("worker") or "",
                   committed_at=float(d["committed_at"]) if d.get("committed_at") else None,
                   fence=d.get("fence") or "", attempt=d.get("attempt") or "",
                   attempts=int(d.get("attempts") or 0), error=d.get("error") or "",
                   started_at=float(d["attempt_started_at"]) if d.get("attempt_started_at") else None,
                   attempt_worker=d.get("attempt_worker") or "",
                   error_session=int(d.get("error_session") or 0),
                   reconcile=d.get("reconcile") or None)
