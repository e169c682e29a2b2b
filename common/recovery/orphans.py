"""Objects on S3 that no load will ever read: parts of chunk attempts that lost the fence
or were killed before committing, and committed parts of abandoned runs. They are listed,
never deleted here (`s3clean` deletes them)."""
from __future__ import annotations

import re

from common.model.records import RunStatus
from common.store.s3 import Store
from common.state.table import TableState

ATTEMPT_OBJECT = re.compile(r"run=([^/]+)/chunk=(\d+)/attempt=([^/]+)/[^/]+$")


def find(state: TableState, store: Store, table_prefix: str) -> dict[str, str]:
    """S3 key -> why it is an orphan: what Redis noted, and what the listing shows."""
    found = {key: info.get("reason", "orphan") for key, info in state.orphans().items()}
    runs: dict[str, dict[int, tuple[str, str, str]]] = {}
    for key, _ in store.list(table_prefix):
        m = ATTEMPT_OBJECT.search(key)
        if not m or key in found:
            continue
        run_id, number, attempt = m.group(1), int(m.group(2)), m.group(3)
        if run_id not in runs:
            status = state.run_meta(run_id).get("status", "")
            runs[run_id] = {c.number: (c.state, c.attempt, c.fence if status != RunStatus.ABANDONED else "")
                            for c in state.chunks(run_id)}
        chunk = runs[run_id].get(number)
        if chunk is None:
            continue  # a run Redis does not know (yet): `watermark rebuild` decides
        chunk_state, committed, fence = chunk
        if chunk_state != "pending" and attempt != committed:
            found[key] = "attempt that did not commit"
        elif chunk_state == "pending" and attempt != fence:
            found[key] = "attempt superseded before committing"
    return found
