"""`make bench` keeps working: a small run of bench/bench_sync.py on a table of its own
(figures are reported, never asserted: a benchmark does not fail the suite)."""
from __future__ import annotations

import json
import subprocess
import sys

from tests.services import REPO


def test_the_benchmark_runs_and_reports_every_stage(ferry_env: dict[str, str]) -> None:
    env = dict(ferry_env, BENCH_REDIS_URL=ferry_env["FERRY_REDIS_URL"].rsplit("/", 1)[0] + "/15")
    out = subprocess.run([sys.executable, "-m", "bench.bench_sync", "--rows", "3000", "--chunk-rows", "1000",
                          "--table", "bench.orders_smoke"], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    doc = json.loads(out.stdout[out.stdout.index("{"):])
    assert doc["check"]["match"] and doc["check"]["source_rows"] == 3000
    sync = doc["sync"]
    for key in ("wall_s", "plan_s", "first_chunk_started_s", "extract_s", "load_s", "no_change_sync_s"):
        assert isinstance(sync[key], (int, float)), key
    assert len(sync["workers_peak_rss_mb"]) == 2 and doc["single_process"]["plain_copy_s"] > 0
    single = doc["single_process"]
    for key in ("read_to_arrow_s", "duckdb_read_s", "read_to_arrow_source_cpu_s", "duckdb_read_source_cpu_s",
                "duckdb_read_rows_per_s"):  # both readers, with the source's CPU of each
        assert isinstance(single[key], (int, float)), key
    assert isinstance(sync["source_cpu_s"], (int, float))


def test_the_reconcile_benchmark_runs_and_reports(ferry_env: dict[str, str]) -> None:
    env = dict(ferry_env, BENCH_REDIS_URL=ferry_env["FERRY_REDIS_URL"].rsplit("/", 1)[0] + "/15")
    out = subprocess.run([sys.executable, "-m", "bench.bench_reconcile", "--rows", "3000", "--source",
                          "bench.orders_smoke", "--table", "bench.drift_smoke", "--target-schema",
                          "ferry_bench_rec_smoke"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    doc = json.loads(out.stdout[out.stdout.index("{"):])
    assert doc["rows_mode_exact"] and doc["full_reload_exact"]
    ops = doc["ops"]
    assert ops["reconcile_keys"]["rows_deleted"] == ops["reconcile_rows"]["rows_deleted"] == 30
    assert ops["reconcile_rows"]["rows_repaired"] == 30 and ops["reconcile_keys"]["rows_repaired"] == 0
    for op in ops.values():
        assert op["wall_s"] > 0 and op["source_cpu_s"] >= 0
