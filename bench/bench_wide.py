"""`make bench`, wide rows: memory is bounded in bytes, not rows.

Three tables, each synced by fresh workers (peak RSS is a per-process high-water mark):
- bench.wide_blobs: 200 rows of a 1 MB LONGBLOB;
- bench.wide_cols: 200 columns (VARCHAR(20)) x 30,000 rows;
- bench.wide_text: 100,000 rows of ~1 KB text in one chunk (read by DuckDB, in pages).
Reports the reader, the largest part, the peak RSS of the extract process and of the load
process (one worker each) next to the target (4 x part_mb + 200 MB),
and whether the target equals the source (row count and a checksum over every column).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common  # noqa: F401  (mysql.connector before pyarrow)
import mysql.connector

from bench.bench_sync import PIPELINE, fresh_run, peak_rss_mb, synced
from tests.services import MotoServer, Worker
from tests.test_readers import readers_in_log

PART_MB = 64
COLS = 200


def seed_wide() -> None:
    conn = mysql.connector.connect(host="127.0.0.1", user="root", autocommit=True)
    cur = conn.cursor()
    cur.execute("CREATE DATABASE IF NOT EXISTS bench")
    cur.execute("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema='bench'"
                " AND table_name IN ('wide_blobs', 'wide_cols', 'wide_text')")
    if cur.fetchone()[0] == 3:
        return
    cur.execute("DROP TABLE IF EXISTS bench.wide_blobs, bench.wide_cols, bench.wide_text")
    # DuckDB stores a statement's whole result before handing on a row: 100 MB in one chunk
    # is read in pages, not held at once.
    cur.execute("CREATE TABLE bench.wide_text (id INT NOT NULL PRIMARY KEY, body VARCHAR(1000) NOT NULL)"
                " DEFAULT CHARSET=latin1")
    cur.execute("INSERT INTO bench.wide_text SELECT seq, CONCAT(seq, REPEAT(MD5(seq), 31))"
                " FROM test.seq_1_to_100000")
    cur.execute("CREATE TABLE bench.wide_blobs (id INT NOT NULL PRIMARY KEY, body LONGBLOB, note VARCHAR(20))")
    for start in range(0, 200, 4):
        cur.executemany("INSERT INTO bench.wide_blobs VALUES (%s, %s, %s)",
                        [(i, os.urandom(1024 * 1024), f"row {i}") for i in range(start, start + 4)])
    cols = ", ".join(f"c{i} VARCHAR(20)" for i in range(COLS - 1))
    # latin1: 200 utf8mb4 VARCHAR(20) columns would pass InnoDB's 8,126-byte row limit.
    cur.execute(f"CREATE TABLE bench.wide_cols (id INT NOT NULL PRIMARY KEY, {cols}) DEFAULT CHARSET=latin1")
    marks = ", ".join(["%s"] * COLS)
    for start in range(0, 30_000, 1_000):
        cur.executemany(f"INSERT INTO bench.wide_cols VALUES ({marks})",
                        [(i, *(f"v{i % 997}-{j}" for j in range(COLS - 1))) for i in range(start, start + 1_000)])
    conn.close()


def run_case(table: str, work: Path, moto: MotoServer) -> dict[str, object]:
    target_schema = "ferry_bench_wide"
    env, client, store = fresh_run(work, moto, target_schema, table, {"part_mb": PART_MB})
    # One worker reads (extract), the other plans and loads: each process's peak is its own.
    workers = [Worker("wide-extract", env, work, concurrency=1, queues="extract"),
               Worker("wide-load", env, work, concurrency=1, queues="plan,load")]
    try:
        t0 = time.time()
        proc = subprocess.run([sys.executable, "-m", "ferry", "sync", "-p", PIPELINE, "-t", table, "--wait"],
                              env=env, capture_output=True, text=True)
        wall = time.time() - t0
        if proc.returncode != 0:
            return {"error": proc.stderr[-2000:]}
        parts = [size for key, size in store.list(f"ferry/{PIPELINE}/") if key.endswith(".parquet")]
        return {"reader": sorted(readers_in_log(workers[0].log_path, table)), "wall_s": round(wall, 2),
                "parts": len(parts), "largest_part_mb": round(max(parts) / 2**20, 1),
                "extract_peak_rss_mb": round(peak_rss_mb(workers[:1]), 1),
                "load_peak_rss_mb": round(peak_rss_mb(workers[1:]), 1),
                "target_rss_mb": 4 * PART_MB + 200, "check": synced(table, target_schema, client)}
    finally:
        for w in workers:
            w.stop()
        store.delete(k for k, _ in store.list(f"ferry/{PIPELINE}/"))


def main() -> int:
    seed_wide()
    work = Path(tempfile.mkdtemp(prefix="ferry-bench-wide-"))
    moto = MotoServer(work)
    try:
        result = {table: run_case(table, work, moto)
                  for table in ("bench.wide_blobs", "bench.wide_cols", "bench.wide_text")}
    finally:
        moto.stop()
    print(json.dumps(result, indent=2))
    return 0 if all(r.get("check", {}).get("match") for r in result.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
