"""What every part of a table's state shares: the Redis client, the table's keys, the
scripts. Each concern of the state is a class of its own (locks.py, runs.py, segments.py,
chunks.py, parts.py, status.py), and TableState (table.py) is all of them for one table."""
from __future__ import annotations

from typing import Any, Sequence

import redis

from common.state import scripts
from common.state.keys import TableKeys


def text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class StateBase:
    """One pipeline table's Redis state. Writes take an optional pipeline (`pipe`): several
    writes then go to Redis in one MULTI (or one round trip) of the caller's."""

    def __init__(self, client: redis.Redis, pipeline: str, table: str) -> None:
        self.r = client
        self.pipeline = pipeline
        self.table = table
        self.keys = TableKeys(pipeline, table)
        # (the keys most read by tests and tools, under their long-standing names)
        self.state_key = self.keys.state
        self.lock_key = self.keys.lock
        self.load_lock_key = self.keys.load_lock
        self.pending_key = self.keys.pending
        self.runs_key = self.keys.runs
        self.schema_key = self.keys.schema
        self.orphans_key = self.keys.orphans
        self.schema_log_key = self.keys.schema_log

    def _script(self, name: str, keys: Sequence[str], args: Sequence[Any], pipe: Any = None) -> Any:
        return scripts.run(pipe if pipe is not None else self.r, name, keys, args)

    def _w(self, pipe: Any) -> Any:
        """Where a write goes: the caller's pipeline, or straight to Redis."""
        return pipe if pipe is not None else self.r
