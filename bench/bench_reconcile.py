"""`make bench`: `ferry reconcile` against a full reload, on one drifted table.

1. Copies bench.orders (made by demo.seed, 1,000,000 rows) into bench.drift and syncs it
   into PostgreSQL with real workers (id strategy); keeps a copy of the synced target.
2. Drifts the source: deletes 1% of the rows at random, updates another 1% without
   touching the cursor (what no sync can see).
3. From that same target (restored from the copy before each), measures
   `ferry reconcile --mode keys`, `ferry reconcile --mode rows` and a full reload of the
   table (strategy: full, swapped in): wall seconds, and the source's CPU seconds (mariadbd's
   utime + stime from /proc before and after, once the server is idle), and checks the
   target after each. Also the floors no reconcile goes under here: one COUNT(*) over the
   table (source CPU) and the CLI's start (wall).
4. With --keys-rows N (make bench: 10,000,000), also a keys-mode pass over a table of N rows.

A benchmark reports; it never fails for being slow.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import common  # noqa: F401  (mysql.connector before pyarrow)
import mysql.connector
import psycopg
import yaml

from bench.bench_sync import PG, PIPELINE, ensure_table, fresh_run, mariadbd_cpu_s, synced
from tests.services import MotoServer, Worker

TARGET_SCHEMA = "ferry_bench_rec"  # (--target-schema)


def settled(limit_s: float = 60.0) -> float:
    """Wait until the MySQL server is idle (two half-second samples under 0.02 s of CPU each):
    the purge and page flushing that follow the drift's DELETE and UPDATE are not the
    reconcile's cost. Returns the seconds waited."""
    t0, quiet = time.time(), 0
    while quiet < 2 and time.time() - t0 < limit_s:
        cpu = mariadbd_cpu_s()
        time.sleep(0.5)
        quiet = quiet + 1 if mariadbd_cpu_s() - cpu < 0.02 else 0
    return round(time.time() - t0, 1)


def floors(table: str) -> dict[str, float]:
    """What no reconcile of this table can go under here: the source's CPU for one
    `SELECT COUNT(*)` over it (every key examined once; median of three) and the wall time of
    starting the CLI (`ferry reconcile --help`; median of three)."""
    conn = mysql.connector.connect(host="127.0.0.1", user="root", autocommit=True)
    cur = conn.cursor()
    cpus = []
    for _ in range(3):
        cpu = mariadbd_cpu_s()
        cur.execute(f"SELECT COUNT(*) FROM {table}")
        cur.fetchall()
        cpus.append(mariadbd_cpu_s() - cpu)
    conn.close()
    starts = []
    for _ in range(3):
        t0 = time.time()
        subprocess.run([sys.executable, "-m", "ferry", "reconcile", "--help"], capture_output=True, check=True)
        starts.append(time.time() - t0)
    return {"count_all_source_cpu_s": round(sorted(cpus)[1], 3), "cli_start_s": round(sorted(starts)[1], 2)}


def mysql_exec(*statements: str) -> None:
    conn = mysql.connector.connect(host="127.0.0.1", user="root", autocommit=True)
    cur = conn.cursor()
    for s in statements:
        cur.execute(s)
    conn.close()


def copy_table(src: str, dst: str, rows: int) -> None:
    """dst: the first `rows` rows of src (ids offset to fill larger copies)."""
    mysql_exec(f"DROP TABLE IF EXISTS {dst}", f"CREATE TABLE {dst} LIKE {src}")
    have = 0
    offset = 0
    conn = mysql.connector.connect(host="127.0.0.1", user="root", autocommit=True)
    cur = conn.cursor()
    cur.execute(f"SELECT COUNT(*), MAX(id) FROM {src}")
    n, top = cur.fetchone()
    while have < rows:
        take = min(n, rows - have)
        cur.execute(f"INSERT INTO {dst} SELECT id + {offset}, customer_id, status, amount, discount, weight_kg, "
                    f"is_gift, note, created_at, updated_at, ship_date FROM {src} ORDER BY id LIMIT {take}")
        have += take
        offset += int(top)
    conn.close()


def write_pipeline(work: Path, table: str, strategy: str) -> None:
    doc = yaml.safe_load((work / "pipelines" / f"{PIPELINE}.yml").read_text())
    doc["tables"] = {table: {"strategy": strategy, "reconcile": {"range_rows": 100_000}}}
    (work / "pipelines" / f"{PIPELINE}.yml").write_text(yaml.safe_dump(doc))


def ferry(env: dict[str, str], *args: str) -> dict[str, Any]:
    out = Path(env["FERRY_CONFIG"]) / "op.json"
    out.unlink(missing_ok=True)
    proc = subprocess.run([sys.executable, "-m", "ferry", *args, "--json-output", str(out)], env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"ferry {' '.join(args)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(out.read_text())


def measured(fn: Any) -> tuple[float, float, Any]:
    cpu, t0 = mariadbd_cpu_s(), time.time()
    got = fn()
    return round(time.time() - t0, 2), round(mariadbd_cpu_s() - cpu, 2), got


def stages(client: Any, table: str, run_id: str) -> dict[str, float]:
    """Where a run's time went: queued to planned, the ranges, the load."""
    from common.state.table import TableState

    st = TableState(client, PIPELINE, table)
    m = st.run_meta(run_id)
    last = max(c.committed_at or 0 for c in st.chunks(run_id))
    q, p = float(m["queued_at"]), float(m["planned_at"])
    return {"plan_s": round(p - q, 2), "ranges_s": round(last - p, 2),
            "load_s": round(float(m["finished_at"]) - float(m.get("load_started_at") or last), 2)}


def restore_target(name: str) -> None:
    with psycopg.connect(**PG, autocommit=True) as pg:
        pg.execute(f'DROP TABLE IF EXISTS {TARGET_SCHEMA}."{name}"')
        pg.execute(f'CREATE TABLE {TARGET_SCHEMA}."{name}" (LIKE {TARGET_SCHEMA}."{name}_synced" INCLUDING ALL)')
        pg.execute(f'INSERT INTO {TARGET_SCHEMA}."{name}" SELECT * FROM {TARGET_SCHEMA}."{name}_synced"')


def main() -> int:
    global TARGET_SCHEMA
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--keys-rows", type=int, default=0, help="Also a keys-mode pass over a table this big.")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--source", default="bench.orders", help="The table made by demo.seed to copy from.")
    ap.add_argument("--table", default="bench.drift", help="The copy that drifts (dropped after).")
    ap.add_argument("--target-schema", default="ferry_bench_rec")
    args = ap.parse_args()
    TARGET_SCHEMA = args.target_schema
    ensure_table(args.source, args.rows)
    table, name = args.table, args.table.split(".")[1]
    copy_table(args.source, table, args.rows)
    work = Path(tempfile.mkdtemp(prefix="ferry-bench-rec-"))
    moto = MotoServer(work)
    workers: list[Worker] = []
    result: dict[str, Any] = {"rows": args.rows}
    try:
        env, client, _ = fresh_run(work, moto, TARGET_SCHEMA, table, {"chunk_rows": 100_000})
        write_pipeline(work, table, "id")
        workers = [Worker(f"benchrec{i + 1}", env, work, concurrency=1) for i in range(args.workers)]
        ferry(env, "sync", "-p", PIPELINE, "-t", table, "--wait")
        with psycopg.connect(**PG, autocommit=True) as pg:
            pg.execute(f'CREATE TABLE {TARGET_SCHEMA}."{name}_synced" AS SELECT * FROM {TARGET_SCHEMA}."{name}"')
        drift = max(1, args.rows // 100)
        mysql_exec(f"DELETE FROM {table} WHERE id IN (SELECT id FROM (SELECT id FROM {table} ORDER BY RAND(7)"
                   f" LIMIT {drift}) d)",
                   f"UPDATE {table} SET amount = amount + 1, updated_at = updated_at WHERE id IN (SELECT id FROM"
                   f" (SELECT id FROM {table} ORDER BY RAND(8) LIMIT {drift}) u)")
        result["settle_s"] = settled()
        result["floors"] = floors(table)
        ops = {}
        for mode in ("keys", "rows"):
            restore_target(name)
            settled()
            wall, cpu, doc = measured(lambda: ferry(env, "reconcile", "-p", PIPELINE, "-t", table, "--mode", mode,
                                                    "--wait"))
            ops[f"reconcile_{mode}"] = {"wall_s": wall, "source_cpu_s": cpu, "rows_deleted": doc["rows_deleted"],
                                        "rows_repaired": doc["rows_repaired"], "ranges": doc["ranges"],
                                        **stages(client, table, doc["run_id"])}
        result["rows_mode_exact"] = synced(table, TARGET_SCHEMA, client)["match"]
        restore_target(name)
        settled()
        write_pipeline(work, table, "full")
        wall, cpu, _ = measured(lambda: ferry(env, "sync", "-p", PIPELINE, "-t", table, "--wait"))
        ops["full_reload"] = {"wall_s": wall, "source_cpu_s": cpu}
        result["full_reload_exact"] = synced(table, TARGET_SCHEMA, client)["match"]
        full = ops["full_reload"]
        for mode in ("keys", "rows"):
            op = ops[f"reconcile_{mode}"]
            op["time_vs_full_reload"] = round(op["wall_s"] / full["wall_s"], 3)
            op["source_cpu_vs_full_reload"] = round(op["source_cpu_s"] / max(full["source_cpu_s"], 0.01), 3)
        result["floors"]["count_all_vs_full_reload_cpu"] = round(
            result["floors"]["count_all_source_cpu_s"] / max(full["source_cpu_s"], 0.01), 3)
        result["floors"]["cli_start_vs_full_reload"] = round(result["floors"]["cli_start_s"] / full["wall_s"], 3)
        result["ops"] = ops
        if args.keys_rows:
            big, big_name = "bench.drift_big", "drift_big"
            copy_table(args.source, big, args.keys_rows)
            doc = yaml.safe_load((work / "pipelines" / f"{PIPELINE}.yml").read_text())
            doc["tables"] = {big: {"reconcile": {"range_rows": 200_000}}}
            (work / "pipelines" / f"{PIPELINE}.yml").write_text(yaml.safe_dump(doc))
            t0 = time.time()
            ferry(env, "sync", "-p", PIPELINE, "-t", big, "--wait")
            sync_s = time.time() - t0
            mysql_exec(f"DELETE FROM {big} WHERE id % 1000 = 7")
            settled()
            wall, cpu, got = measured(lambda: ferry(env, "reconcile", "-p", PIPELINE, "-t", big, "--mode", "keys",
                                                    "--wait"))
            result["keys_pass_big"] = {"rows": args.keys_rows, "sync_s": round(sync_s, 1), "wall_s": wall,
                                       "source_cpu_s": cpu, "rows_deleted": got["rows_deleted"],
                                       "rows_per_s": round(args.keys_rows / wall)}
            mysql_exec(f"DROP TABLE IF EXISTS {big}")
            with psycopg.connect(**PG, autocommit=True) as pg:
                pg.execute(f'DROP TABLE IF EXISTS {TARGET_SCHEMA}."{big_name}"')
    finally:
        for w in workers:
            w.stop()
        moto.stop()
        mysql_exec(f"DROP TABLE IF EXISTS {table}")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
