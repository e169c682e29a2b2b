"""A table's own hash and records: cursor, statuses, cumulative counters, the recorded
column mapping and the log of schema changes."""
from __future__ import annotations

import json
import time
from typing import Any

from common.errors import LockedError
from common.model import bounds, naming
from common.model.bounds import Key
from common.model.types import TableSchema
from common.state.base import text
from common.state.locks import Locks


class TableStatus(Locks):
    def state(self) -> dict[str, str]:
        return {text(k): text(v) for k, v in self.r.hgetall(self.keys.state).items()}

    def s3_legacy(self) -> bool:
        """True if the table's S3 objects live under the legacy (percent-encoded) prefix:
        decided once (naming.S3_LAYOUT_FIELD) and kept, so a run never spans two prefixes. A
        table that already has state (runs, a cursor, a recorded mapping) keeps the legacy
        prefix; a new one gets the safe one."""
        layout = self.r.hget(self.keys.state, naming.S3_LAYOUT_FIELD)
        if layout is None:
            had_state = bool(self.r.llen(self.keys.runs) or self.r.exists(self.keys.schema)
                             or self.r.hexists(self.keys.state, "cursor"))
            self.r.hsetnx(self.keys.state, naming.S3_LAYOUT_FIELD, "legacy" if had_state else "safe")
            layout = self.r.hget(self.keys.state, naming.S3_LAYOUT_FIELD)
        return text(layout) == "legacy"

    def set_s3_layout(self, legacy: bool) -> None:
        """Record where the table's objects are (after a rebuild read them from S3)."""
        self.r.hset(self.keys.state, naming.S3_LAYOUT_FIELD, "legacy" if legacy else "safe")

    def state_fields(self, *fields: str) -> dict[str, str | None]:
        values = self.r.hmget(self.keys.state, fields)
        return {f: None if v is None else text(v) for f, v in zip(fields, values)}

    def cursor(self) -> Key | None:
        raw = self.r.hget(self.keys.state, "cursor")
        return None if raw is None else bounds.decode(raw)

    def set_status(self, pipe: Any = None, **fields: str) -> None:
        self._w(pipe).hset(self.keys.state, mapping=fields)

    def count(self, pipe: Any = None, **amounts: int) -> None:
        """Add to the table's cumulative counters (chunk_failures, values_truncated, ...)."""
        w = self._w(pipe)
        for field, n in amounts.items():
            w.hincrby(self.keys.state, field, n)

    def count_failed_attempt(self) -> None:
        """One more chunk attempt failed, retried or not (the chunk_failures counter)."""
        self.count(chunk_failures=1)

    def set_cursor(self, key: Key | None) -> None:
        """Move the cursor by hand (watermark set); refused while a run holds the lock."""
        owner = self.lock_owner()
        if owner:
            raise LockedError(self.table, owner)
        if key is None:
            self.r.hdel(self.keys.state, "cursor")
        else:
            self.r.hset(self.keys.state, mapping={"cursor": bounds.encode(key), "cursor_run": "manual",
                                                  "cursor_at": f"{time.time():.3f}"})

    def delete_all(self) -> int:
        """Forget everything about the table (watermark reset)."""
        keys = list(self.r.scan_iter(self.keys.pattern, count=1000))
        return int(self.r.delete(*keys)) if keys else 0

    def record_schema_event(self, run_id: str, change: str, pipe: Any = None) -> None:
        """Log a schema change or an ALTER in the table's state (kept: the last 1,000)."""
        tx = pipe if pipe is not None else self.r.pipeline(transaction=True)
        tx.rpush(self.keys.schema_log, json.dumps({"at": round(time.time(), 3), "run": run_id, "change": change}))
        tx.ltrim(self.keys.schema_log, -1000, -1)
        if pipe is None:
            tx.execute()

    def schema_events(self) -> list[dict[str, Any]]:
        return [json.loads(v) for v in self.r.lrange(self.keys.schema_log, 0, -1)]

    def schema(self) -> TableSchema | None:
        raw = self.r.get(self.keys.schema)
        return None if raw is None else TableSchema.from_json(json.loads(raw))

    def save_schema(self, schema: TableSchema, pipe: Any = None) -> None:
        self._w(pipe).set(self.keys.schema, json.dumps(schema.to_json()))
