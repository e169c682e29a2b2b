"""`make bench`, planning: a run of a large table (BENCH_PLAN_ROWS, default 10,000,000 rows
of bench.orders' shape, chunk_rows 100,000) on real workers: how long after the plan task
starts the first chunk is being read, and how long the whole plan takes while chunks are
read. The run is cancelled once both are known (the point is the plan, not the copy).
Prints JSON."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common  # noqa: F401  (mysql.connector before pyarrow)

from bench.bench_sync import PIPELINE, ensure_table, fresh_run
from common.model import naming
from common.state.table import TableState
from tests.services import MotoServer, Worker


def main() -> int:
    rows = int(os.environ.get("BENCH_PLAN_ROWS", "10000000"))
    table = "bench.orders_plan"
    ensure_table(table, rows)
    work = Path(tempfile.mkdtemp(prefix="ferry-bench-plan-"))
    moto = MotoServer(work)
    workers: list[Worker] = []
    try:
        env, client, _ = fresh_run(work, moto, "ferry_bench_plan", table, {"chunk_rows": 100_000})
        workers = [Worker(f"plan{i + 1}", env, work, concurrency=1) for i in range(2)]
        proc = subprocess.run([sys.executable, "-m", "ferry", "sync", "-p", PIPELINE, "-t", table], env=env,
                              capture_output=True, text=True)
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return 1
        state = TableState(client, PIPELINE, table)
        deadline = time.time() + 600
        while time.time() < deadline:
            runs = state.runs()
            meta = state.run_meta(runs[-1]) if runs else {}
            if meta.get("planned_all_at") and any(c.started_at for c in state.chunks(runs[-1])):
                break
            time.sleep(0.2)
        else:
            print("the plan did not finish in 600 s", file=sys.stderr)
            return 1
        run_id = runs[-1]
        chunks = state.chunks(run_id)
        subprocess.run([sys.executable, "-m", "ferry", "cancel", "-p", PIPELINE, "-t", table, "--yes"], env=env,
                       capture_output=True, text=True)
        started = float(meta["started_at"])
        planned_all = float(meta["planned_all_at"])
        first_started = min(c.started_at for c in chunks if c.started_at)
        print(json.dumps({"plan": {
            "table_rows": rows, "chunk_rows": 100_000, "chunks": len(chunks),
            "first_chunk_started_s": round(first_started - started, 2),
            "first_segment_chunks": len(json.loads(client.hget(
                naming.run_segments_key(PIPELINE, table, run_id, 1), "s") or "{}").get("chunks") or []),
            "plan_complete_s": round(planned_all - started, 2),
            "s_per_million_rows": round((planned_all - started) / rows * 1e6, 3),
            "chunks_committed_before_plan_complete": sum(
                1 for c in chunks if c.committed_at and c.committed_at < planned_all)}}, indent=2))
    finally:
        for w in workers:
            w.stop()
        moto.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
