"""`make bench`: sync a large table with real workers and report speed, memory and exactness.

1. Seeds bench.orders (11 columns: DECIMAL, DATETIME(6), ENUM, DOUBLE, ...) if needed.
2. Reads it in one process the way a worker does (fetch -> Arrow -> Parquet) through each
   reader (DuckDB's mysql extension, mysql-connector-python), and with ConnectorX (binary
   and text protocol) for reference: seconds, rows/s and the source server's CPU seconds of
   each read (mariadbd's utime + stime from /proc, before and after).
3. Starts an S3 server and N workers, runs `ferry sync --wait` into PostgreSQL, and reports
   rows/s of the whole sync and of its extraction stage, the workers' peak memory, and the
   source's CPU for the whole sync against one ConnectorX binary read of the same rows.
4. Compares source and target: row count and a checksum over every column.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import common  # noqa: F401  (mysql.connector before pyarrow)
import mysql.connector
import psycopg
import pyarrow.parquet as pq
import redis
import yaml

from common.model import naming
from common.source import catalog, connection, duck, reads
from common.config.connections import S3Config, SourceConfig
from common.config.pipeline import TableSettings
from common.source.convert import BatchStats, gc_paused, rows_to_batch
from common.store.s3 import Store, make_client
from common.state.table import TableState
from demo.seed import seed
from tests import compare
from tests.services import MotoServer, Worker

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
PG = dict(host="127.0.0.1", port=5432, dbname="test", user="postgres")
PIPELINE = "bench"


def mariadbd_cpu_s() -> float:
    """CPU seconds (user + system) the MySQL server has used so far."""
    pid = subprocess.run(["pgrep", "-o", "-x", "mariadbd|mysqld"], capture_output=True, text=True).stdout.split()
    fields = Path(f"/proc/{pid[0]}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ensure_table(table: str, rows: int) -> None:
    schema, name = table.split(".")
    conn = mysql.connector.connect(host="127.0.0.1", user="root")
    cur = conn.cursor()
    cur.execute("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema=%s AND table_name=%s",
                (schema, name))
    have = 0
    if cur.fetchone()[0]:
        cur.execute(f"SELECT COUNT(*) FROM `{schema}`.`{name}`")
        have = cur.fetchone()[0]
    conn.close()
    if have != rows:
        t = time.perf_counter()
        seed(table, rows)
        print(f"seeded {table} with {rows:,} rows in {time.perf_counter() - t:.1f}s")


def _read_to_arrow(conn: Any, table: str, schema: Any, arrow_schema: Any,
                   batch_rows: int) -> tuple[list[Any], float, float]:
    """(batches, fetch seconds, convert seconds) of one read of the whole table."""
    fetch = convert = 0.0
    batches = []
    with gc_paused():
        stream = reads.read_range(
            conn, table, [c.source for c in schema.columns], schema.key, None, None, batch_rows,
            select=[reads.select_expression(c) for c in schema.columns])
        while True:
            a = time.perf_counter()
            rows = next(stream, None)
            b = time.perf_counter()
            fetch += b - a
            if rows is None:
                break
            batches.append(rows_to_batch(rows, schema, arrow_schema, BatchStats()))
            convert += time.perf_counter() - b
    return batches, fetch, convert


def single_process(table: str, batch_rows: int, reps: int = 3) -> dict[str, float]:
    """One process reads the whole table the way extract_chunk does, without S3; and
    ConnectorX reads it (its default binary protocol, and the text protocol ferry uses).
    After one warm-up read of each, they take turns `reps` times: the medians are reported."""
    import statistics
    conn = connection.connect(SourceConfig(host="127.0.0.1", user="root"))
    schema_name, name = table.split(".")
    settings = TableSettings(key=table, schema=schema_name, name=name, primary_key=None, cursor=None,
                             strategy="id", target_name=name, exclude_columns=(), chunk_rows=1,
                             part_mb=64, part_rows=None, batch_rows=batch_rows, tinyint1_as_bool=True)
    schema = catalog.read_schema(conn, settings)
    arrow_schema = schema.arrow_schema()
    try:
        import connectorx as cx
    except ImportError:
        cx = None
    times: dict[str, list[float]] = {}

    def timed(what: str, fn: Any) -> Any:
        cpu, t = mariadbd_cpu_s(), time.perf_counter()
        out = fn()
        times.setdefault(what, []).append(time.perf_counter() - t)
        times.setdefault(what.replace("_s", "_source_cpu_s"), []).append(mariadbd_cpu_s() - cpu)
        return out

    con = duck.connect(SourceConfig(host="127.0.0.1", user="root"), "127.0.0.1", 3306)

    def duck_read() -> int:
        return sum(b.num_rows for b in duck.read_range(con, table, schema, list(schema.key), None, None, batch_rows,
                                                       16 * 1024 * 1024, BatchStats(), mariadb=True))

    url = f"mysql://root:@127.0.0.1:3306/{schema_name}"
    for rep in range(reps + 1):  # the first round warms caches and is not counted
        batches, fetch, convert = timed("read_to_arrow_s", lambda: _read_to_arrow(
            conn, table, schema, arrow_schema, batch_rows))
        times.setdefault("fetch_s", []).append(fetch)
        times.setdefault("convert_s", []).append(convert)
        timed("duckdb_read_s", duck_read)
        if cx is not None:
            for proto in ("binary", "text"):
                timed(f"connectorx_{proto}_s", lambda: cx.read_sql(
                    url, f"SELECT * FROM `{name}`", return_type="arrow", protocol=proto))
        if rep == 0:
            times.clear()
    con.close()
    out: dict[str, float] = {k: statistics.median(v) for k, v in times.items()}
    if "connectorx_binary_s" in out:
        out["connectorx_s"] = out["connectorx_binary_s"]
    t = time.perf_counter()
    sink = io.BytesIO()
    with pq.ParquetWriter(sink, arrow_schema, compression="snappy") as w:
        for b in batches:
            w.write_batch(b)
    out.update({"rows": sum(b.num_rows for b in batches), "parquet_s": time.perf_counter() - t,
                "parquet_mb": sink.tell() / 1e6, "plain_copy_s": plain_copy(schema, sink.getvalue())})
    return out


def plain_copy(schema: Any, parquet: bytes) -> float:
    """The load stage's reference: a plain PostgreSQL COPY of the same rows (the same CSV the
    stand-in streams) into an empty table with the same columns and primary key."""
    from common.warehouse import sql
    from common.warehouse.postgres import parquet_to_csv

    columns = ", ".join(f"{naming.quote_ident(c.name)} {sql.column_type(c, sql.POSTGRES)}" for c in schema.columns)
    key = ", ".join(naming.quote_ident(schema.column(k).name) for k in schema.key)
    with psycopg.connect(**PG, autocommit=True) as pg:
        pg.execute("DROP TABLE IF EXISTS ferry_bench_plain_copy")
        pg.execute(f"CREATE TABLE ferry_bench_plain_copy ({columns}, PRIMARY KEY ({key}))")
        pieces = list(parquet_to_csv(parquet))
        t = time.perf_counter()
        with pg.cursor().copy("COPY ferry_bench_plain_copy FROM STDIN (FORMAT csv)") as copy:
            for piece in pieces:
                copy.write(piece)
        elapsed = time.perf_counter() - t
        pg.execute("DROP TABLE ferry_bench_plain_copy")
    return elapsed


def write_config(work: Path, s3_url: str, target_schema: str, table: str, defaults: dict[str, Any]) -> None:
    """connections.yml and pipelines/bench.yml for one table, into the local services."""
    (work / "pipelines").mkdir(exist_ok=True)
    (work / "connections.yml").write_text(yaml.safe_dump({
        "sources": {"mysql": {"host": "127.0.0.1", "user": "root"}},
        "targets": {"pg": {"type": "postgres", **{k: v for k, v in PG.items() if k != "dbname"},
                           "database": PG["dbname"], "schema": target_schema}},
        "s3": {"bucket": "ferry-bench", "endpoint_url": s3_url, "access_key_id": "x",
               "secret_access_key": "x"}}))
    (work / "pipelines" / f"{PIPELINE}.yml").write_text(yaml.safe_dump({
        "source": "mysql", "target": "pg", "defaults": defaults, "tables": {table: {}}}))


def peak_rss_mb(workers: list[Worker]) -> float:
    peak = 0
    for w in workers:
        for pid in [w.proc.pid, *w.pool_pids()]:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
            except FileNotFoundError:
                pass
    return peak / 1024


def synced(table: str, target_schema: str, client: redis.Redis) -> dict[str, object]:
    schema = TableState(client, PIPELINE, table).schema()
    my = mysql.connector.connect(host="127.0.0.1", user="root")
    my.cursor().execute("SET time_zone = '+00:00'")
    with psycopg.connect(**PG, autocommit=True) as pg:
        src = compare.checksum(compare.source_rows(my, table, schema))
        dst = compare.checksum(compare.target_rows(pg, target_schema, table.split(".")[1], schema))
    return {"source_rows": src[0], "target_rows": dst[0], "source_sha256": src[1],
            "target_sha256": dst[1], "match": src == dst}


def fresh_run(work: Path, moto: MotoServer, target_schema: str, table: str,
              defaults: dict[str, Any]) -> tuple[dict[str, str], redis.Redis, Store]:
    """A clean start for one benchmark sync: its config, an empty Redis database, no target
    schema, the bucket; returns the workers' environment, the Redis client and the store."""
    write_config(work, moto.url, target_schema, table, defaults)
    env = dict(os.environ, FERRY_CONFIG=str(work), FERRY_REDIS_URL=REDIS_URL,
               CELERY_BROKER_URL=REDIS_URL, CELERY_RESULT_BACKEND=REDIS_URL)
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    with psycopg.connect(**PG, autocommit=True) as pg:
        pg.execute(f"DROP SCHEMA IF EXISTS {naming.quote_ident(target_schema)} CASCADE")
    store = Store(make_client(S3Config(bucket="ferry-bench", endpoint_url=moto.url, access_key_id="x",
                                       secret_access_key="x")), "ferry-bench")
    store.ensure_bucket("us-east-1")
    return env, client, store


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--table", default="bench.orders")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=1, help="pool processes per worker")
    ap.add_argument("--chunk-rows", type=int, default=100_000)
    ap.add_argument("--batch-rows", type=int, default=10_000)
    ap.add_argument("--reader", choices=("duckdb", "connector"), default="duckdb",
                    help="The workers' chunk reader for the sync (the single-process read measures both).")
    ap.add_argument("--sync-only", action="store_true",
                    help="Skip the single-process read (a run that only measures the sync, e.g. memory at 4M rows).")
    args = ap.parse_args()

    ensure_table(args.table, args.rows)
    result: dict[str, object] = {"rows": args.rows, "workers": args.workers, "reader": args.reader,
                                 "concurrency": args.concurrency, "chunk_rows": args.chunk_rows}
    result["single_process"] = {} if args.sync_only else single_process(args.table, args.batch_rows)

    work = Path(tempfile.mkdtemp(prefix="ferry-bench-"))
    target_schema = "ferry_bench"
    moto = MotoServer(work)
    workers: list[Worker] = []
    try:
        env, client, _ = fresh_run(work, moto, target_schema, args.table,
                                   {"chunk_rows": args.chunk_rows, "batch_rows": args.batch_rows,
                                    "reader": args.reader})
        workers = [Worker(f"bench{i + 1}", env, work, concurrency=args.concurrency)
                   for i in range(args.workers)]
        report_path = work / "report.json"
        cpu0, t0 = mariadbd_cpu_s(), time.time()
        proc = subprocess.run([sys.executable, "-m", "ferry", "sync", "-p", PIPELINE, "-t", args.table,
                               "--wait", "--json-output", str(report_path)], env=env,
                              capture_output=True, text=True)
        wall, sync_cpu = time.time() - t0, mariadbd_cpu_s() - cpu0
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return 1
        report = json.loads(report_path.read_text())
        state = TableState(client, PIPELINE, args.table)
        run_id = report["run_id"]
        meta = state.run_meta(run_id)
        chunks = state.chunks(run_id)
        queued = float(meta["queued_at"])
        extract_s = max(c.committed_at or 0 for c in chunks) - float(meta["planned_at"])
        load_s = float(meta["finished_at"]) - float(meta["load_started_at"])
        result["sync"] = {
            "wall_s": round(wall, 2), "rows_per_s": round(args.rows / wall), "source_cpu_s": round(sync_cpu, 2),
            "plan_s": round(float(meta["planned_at"]) - float(meta.get("started_at") or queued), 2),
            "first_chunk_started_s": round(min(c.started_at or 1e18 for c in chunks) - queued, 2),
            "extract_s": round(extract_s, 2), "extract_rows_per_s": round(args.rows / extract_s),
            "load_s": round(load_s, 2), "load_rows_per_s": round(args.rows / load_s),
            "chunks": len(chunks), "parts": sum(len(c.parts) for c in chunks),
            "workers_peak_rss_mb": [round(peak_rss_mb([w]), 1) for w in workers]}
        t0 = time.time()
        again = subprocess.run([sys.executable, "-m", "ferry", "sync", "-p", PIPELINE, "-t", args.table, "--wait"],
                               env=env, capture_output=True, text=True)
        result["sync"]["no_change_sync_s"] = round(time.time() - t0, 2) if again.returncode == 0 else None
        result["check"] = synced(args.table, target_schema, client)
    finally:
        for w in workers:
            w.stop()
        moto.stop()
    sp = result["single_process"]
    sp_fmt = {k: round(v, 2) if isinstance(v, float) else v for k, v in sp.items()}  # type: ignore[union-attr]
    result["single_process"] = sp_fmt
    rows = sp.get("rows") or 0  # type: ignore[union-attr]
    for what in ("read_to_arrow", "duckdb_read", "connectorx_binary", "connectorx_text"):
        if f"{what}_s" in sp:  # type: ignore[operator]
            sp_fmt[f"{what}_rows_per_s"] = round(rows / sp[f"{what}_s"])  # type: ignore[index]
    if "connectorx_s" in sp:  # type: ignore[operator]
        sp_fmt["read_vs_connectorx"] = round(sp["connectorx_s"] / sp["read_to_arrow_s"], 2)  # type: ignore[index]
        # The reader a worker uses by default (DuckDB's) against ConnectorX's binary read (1.0: as fast).
        sp_fmt["duckdb_read_vs_connectorx"] = round(sp["connectorx_s"] / sp["duckdb_read_s"], 2)  # type: ignore[index]
        # The source's CPU for ferry's whole sync over one ConnectorX binary read of the same rows.
        result["sync_source_cpu_vs_connectorx_read"] = round(  # type: ignore[index]
            result["sync"]["source_cpu_s"] / max(sp["connectorx_binary_source_cpu_s"], 0.01), 2)  # type: ignore[index]
        # The same protocol as ferry's reads (text): what the driver, not the server, costs.
        sp_fmt["read_vs_connectorx_text"] = round(sp["connectorx_text_s"] / sp["read_to_arrow_s"], 2)  # type: ignore[index]
        # The two reference stages back to back, over ferry's whole sync (1.0: as fast).
        result["whole_sync_ratio"] = round(
            (sp["connectorx_s"] + sp["plain_copy_s"]) / result["sync"]["wall_s"], 2)  # type: ignore[index]
    print(json.dumps(result, indent=2))
    return 0 if result["check"]["match"] else 1  # type: ignore[index]


if __name__ == "__main__":
    sys.exit(main())
