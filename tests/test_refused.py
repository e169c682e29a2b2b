"""A table is never blocked for good by its own data: a range the warehouse refuses waits
(named with its table, column, key range and the warehouse's message) while every other
range and every later row loads; the operator fixes the cause or gives the range up. Parts
lost from S3 fail the run with that cause and the next sync extracts their chunks again."""
from __future__ import annotations

import json

from tests.conftest import Pipe


def _notes(pipe: Pipe, first: int, last: int, null_at: tuple[int, ...] = ()) -> None:
    rows = ", ".join(f"({i}, {'NULL' if i in null_at else repr(f'n{i}')})" for i in range(first, last + 1))
    pipe.execute(f"INSERT INTO notes VALUES {rows}")


def _gauge(pipe: Pipe, name: str, table: str) -> float:
    """One table's sample of a metric, as `ferry metrics` serves it (same collector, same Redis)."""
    import redis

    from common.state.metrics import FerryCollector

    for family in FerryCollector(redis.Redis.from_url(pipe.redis_url), pipe.config_dir).collect():
        for sample in family.samples:
            if sample.name in (name, f"{name}_total") and sample.labels.get("table") == table:
                return sample.value
    raise AssertionError(f"no {name} for {table}")


def test_a_refused_range_waits_while_the_rest_loads_then_loads_or_is_skipped(pipe: Pipe, workers: list) -> None:
    pipe.execute("CREATE TABLE notes (id INT NOT NULL PRIMARY KEY, note VARCHAR(20))")
    _notes(pipe, 1, 3000)
    pipe.write({"notes": {}}, chunk_rows=1000)
    table = pipe.table("notes")
    assert pipe.sync("--wait").code == 0
    target = f'"{pipe.db}".notes'
    pg = pipe.pg()
    # A DBA makes the target's column NOT NULL (the warehouse now refuses NULLs in it) ...
    pg.execute(f"ALTER TABLE {target} ALTER COLUMN note SET NOT NULL")
    # ... and two rows of the next 3,000 have one: chunks (4000, 5000] and (5000, 6000].
    _notes(pipe, 3001, 6000, null_at=(4500, 5500))
    second = pipe.sync("--wait")
    assert second.code == 1
    error = second.report["table_metrics"][table]["error"]
    assert f"table {table}: the warehouse refused chunk 1 of run {second.report['run_id']}" in error, error
    assert "key range (4000, 5000], 1,000 rows, column note" in error and "not-null" in error, error
    assert "(and 1 more chunk(s))" in error and "skip-range" in error, error
    loaded = {r[0] for r in pg.execute(f"SELECT id FROM {target}")}
    assert loaded == set(range(1, 4001)), "the good chunk (3000, 4000] loads, the refused ones wait"

    # New rows keep coming in: the next sync reads and loads them; the two ranges still wait.
    _notes(pipe, 6001, 7000)
    third = pipe.sync("--wait")
    assert third.code == 0, third.stderr
    assert third.report["table_metrics"][table]["refused_ranges_waiting"] == [
        f"run {second.report['run_id']} chunk 1 (4000, 5000]", f"run {second.report['run_id']} chunk 2 (5000, 6000]"]
    assert "2 range(s) refused by the warehouse wait" in third.stderr
    assert _gauge(pipe, "ferry_refused_ranges", table) == 2  # (deploy/alerts.yml: FerryRangeRefused)
    assert {r[0] for r in pg.execute(f"SELECT id FROM {target} WHERE id > 6000")} == set(range(6001, 7001))
    shown = json.loads(pipe.ferry("runs", "show", "-p", pipe.name, "-t", table, second.report["run_id"],
                                  "--json").stdout)
    states = [c["state"] for c in shown["chunks"]]
    assert states == ["loaded", "refused", "refused"], states
    assert shown["chunks"][1]["refused"]["column"] == "note" and shown["chunks"][1]["refused"]["times"] == 2
    text = pipe.ferry("runs", "show", "-p", pipe.name, "-t", table, second.report["run_id"]).stdout
    assert "refused by the warehouse (column note)" in text and "--chunk 2 --yes" in text, text

    # Giving one up: refused without --yes (nothing changes), then done and recorded.
    run = second.report["run_id"]
    unsure = pipe.ferry("watermark", "skip-range", "-p", pipe.name, "-t", table, "--run", run, "--chunk", "2")
    assert unsure.returncode == 2 and "add --yes" in unsure.stderr
    assert len(json.loads(pipe.ferry("watermark", "get", "-p", pipe.name, "-t", table,
                                     "--json").stdout)["refused_ranges"]) == 2
    wrong = pipe.ferry("watermark", "skip-range", "-p", pipe.name, "-t", table, "--run", run, "--chunk", "0", "--yes")
    assert wrong.returncode == 2 and "is not a refused range" in wrong.stderr
    skipped = pipe.ferry("watermark", "skip-range", "-p", pipe.name, "-t", table, "--run", run, "--chunk", "2",
                         "--reason", "bad import", "--yes")
    assert skipped.returncode == 0, skipped.stderr
    assert "1,000 rows of key range (5000, 6000] will not be loaded" in skipped.stdout

    # The DBA's constraint goes; the next sync loads the range that waited, on its own.
    pg.execute(f"ALTER TABLE {target} ALTER COLUMN note DROP NOT NULL")
    fourth = pipe.sync("--wait")
    assert fourth.code == 0, fourth.stderr
    assert "refused_ranges_waiting" not in fourth.report["table_metrics"][table]
    assert fourth.report["table_metrics"][table]["rows_skipped"] == 1000
    got = {r[0]: r[1] for r in pg.execute(f"SELECT id, note FROM {target}")}
    assert set(got) == set(range(1, 7001)) - set(range(5001, 6001)) and got[4500] is None
    doc = json.loads(pipe.ferry("watermark", "get", "-p", pipe.name, "-t", table, "--json").stdout)
    assert doc["refused_ranges"] == [] and doc["rows_skipped"] == 1000
    assert doc["skipped_ranges"] == [f"run {run} chunk 2 (5000, 6000]: 1,000 rows skipped (bad import)"]
    assert doc["rows_extracted"] == doc["rows_loaded"] + doc["rows_skipped"] == 7000
    assert doc["parts_awaiting_load"] == 0
    assert _gauge(pipe, "ferry_refused_ranges", table) == 0 and _gauge(pipe, "ferry_rows_skipped", table) == 1000
    shown = json.loads(pipe.ferry("runs", "show", "-p", pipe.name, "-t", table, run, "--json").stdout)
    assert [c["state"] for c in shown["chunks"]] == ["loaded", "loaded", "skipped"]


def test_parts_lost_from_s3_fail_the_run_saying_so_and_the_next_sync_extracts_them_again(
        pipe: Pipe, workers: list) -> None:
    pipe.execute("CREATE TABLE notes (id INT NOT NULL PRIMARY KEY, note VARCHAR(20))")
    _notes(pipe, 1, 3000)
    pipe.write({"notes": {}}, chunk_rows=1000)
    table = pipe.table("notes")
    extracted = pipe.sync("--wait", "--extract-only")
    assert extracted.code == 0, extracted.stderr
    run = extracted.report["run_id"]
    lost = pipe.state("notes").chunks(run)[1].parts
    assert pipe.store.delete(list(lost)) == len(lost) > 0

    failed = pipe.sync("--wait")
    assert failed.code == 1
    error = failed.report["table_metrics"][table]["error"]
    assert f"{len(lost)} part(s) awaiting load are missing from S3 ({lost[0]}" in error, error
    assert f"run {run} chunk(s) 1" in error and "the next sync extracts them again" in error, error
    assert pipe.state("notes").cursor() == (1000,), "the cursor never stands past a hole"

    again = pipe.sync("--wait")
    assert again.code == 0, again.stderr
    assert again.report["run_id"] == run and again.report["table_metrics"][table]["rows_processed"] == 1000
    assert pipe.assert_synced("notes") == 3000
    totals = pipe.state("notes").state()
    assert totals["rows_extracted"] == totals["rows_loaded"] == "3000", totals
    assert pipe.state("notes").cursor() == (3000,)
