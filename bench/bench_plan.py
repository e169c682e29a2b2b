"""`make bench`, planning: how long the plan of a large table takes (BENCH_PLAN_ROWS, default
10,000,000 rows of bench.orders' shape, chunk_rows 100,000), the plan being what a run waits
for before its first chunk is dispatched. Prints JSON."""
from __future__ import annotations

import json
import os
import sys
import time

import common  # noqa: F401  (mysql.connector before pyarrow)

from bench.bench_sync import ensure_table
from common import cursor, source
from common.config import SourceConfig, TableSettings


def main() -> int:
    rows = int(os.environ.get("BENCH_PLAN_ROWS", "10000000"))
    table = "bench.orders_plan"
    ensure_table(table, rows)
    conn = source.connect(SourceConfig(host="127.0.0.1", user="root"))
    settings = TableSettings(key=table, schema="bench", name="orders_plan", primary_key=None, cursor=None,
                             strategy="id", target_name="orders_plan", exclude_columns=(), chunk_rows=100_000,
                             part_mb=64, part_rows=None, batch_rows=50_000, tinyint1_as_bool=True)
    schema = source.read_schema(conn, settings)
    t = time.perf_counter()
    plan = cursor.plan_run(conn, settings, schema, None, None, None)
    elapsed = time.perf_counter() - t
    print(json.dumps({"plan": {"table_rows": rows, "chunk_rows": settings.chunk_rows, "chunks": len(plan.ranges),
                               "plan_s": round(elapsed, 2), "s_per_million_rows": round(elapsed / rows * 1e6, 3),
                               "first_chunk_dispatched_after_s": round(elapsed, 2)}}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
