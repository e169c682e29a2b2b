"""Parts lost from S3 (a lifecycle rule, a hand-made delete): found before a load, and their
chunks reopened so the run's next session extracts them again instead of every load
failing on the same missing file."""
from __future__ import annotations

import json
from collections import defaultdict
from typing import Sequence

from common.model import naming
from common.store.s3 import Store
from common.model.records import PendingPart
from common.state.table import TableState


def missing(store: Store, table_prefix: str, parts: Sequence[PendingPart]) -> list[PendingPart]:
    """The parts that are not on S3: one listing per run (pages of 1,000 keys followed)."""
    by_run: dict[str, list[PendingPart]] = defaultdict(list)
    for p in parts:
        by_run[p.run_id].append(p)
    gone: list[PendingPart] = []
    for run_id, group in sorted(by_run.items()):
        present = {key for key, _ in store.list(naming.run_prefix(table_prefix, run_id))}
        gone += [p for p in group if p.key not in present]
    return gone


def reopen(state: TableState, gone: Sequence[PendingPart]) -> dict[str, list[int]]:
    """Put the chunks of the missing parts back to pending (see reopen_chunks.lua), run by run;
    returns run -> chunk numbers reopened."""
    chunks: dict[str, set[int]] = defaultdict(set)
    for p in gone:
        chunks[p.run_id].add(p.chunk)
    keys = [p.key for p in gone]
    done: dict[str, list[int]] = {}
    for run_id, numbers in sorted(chunks.items()):
        if state.reopen_chunks(run_id, sorted(numbers), keys):
            done[run_id] = sorted(numbers)
            state.set_run_fields(run_id, reopened=json.dumps(sorted(numbers)))
    return done


def message(table: str, gone: Sequence[PendingPart], reopened: dict[str, list[int]]) -> str:
    """The run's error: which parts are missing, and what the next sync does about it."""
    shown = ", ".join(p.key for p in gone[:3]) + (f" and {len(gone) - 3} more" if len(gone) > 3 else "")
    chunks = "; ".join(f"run {run} chunk(s) {', '.join(map(str, numbers))}" for run, numbers in reopened.items())
    return (f"table {table}: {len(gone)} part(s) awaiting load are missing from S3 ({shown}); "
            f"their chunks were reopened ({chunks}): the next sync extracts them again")
