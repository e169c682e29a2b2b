"""Cursor strategies that cannot lose rows silently or move backwards: a lookback window
larger than a chunk, composite and text keys under the id strategy, the hour repeated
when clocks go back, TINYINT(1) values that are not booleans."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from common.state import faults
from common.model import zones
from tests.conftest import Pipe

DDL = """CREATE TABLE items (
  id INT NOT NULL PRIMARY KEY,
  name VARCHAR(40),
  updated_at DATETIME(6) NULL,
  KEY (updated_at, id)
)"""


def _insert(pipe: Pipe, rows: list[tuple]) -> None:
    pipe.mysql().cursor().executemany("INSERT INTO items VALUES (%s, %s, %s)", rows)


def test_a_lookback_window_larger_than_a_chunk_never_moves_the_cursor_back(pipe: Pipe, workers: list) -> None:
    pipe.execute(DDL)
    base = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0) - timedelta(minutes=30)
    _insert(pipe, [(i, f"v{i}", base + timedelta(seconds=i)) for i in range(1, 501)])
    pipe.write({"items": {"strategy": "timestamp", "cursor": "updated_at", "lag_s": 0,
                          "lookback_s": 3600}}, chunk_rows=100)
    assert pipe.sync("--wait").code == 0
    state = pipe.state("items")
    committed = state.cursor()
    assert committed == (base + timedelta(seconds=500), 500)

    # The next run re-reads all 500 rows behind the cursor (five chunks) plus two new rows;
    # it fails after its first chunks commit. Those chunks end behind the cursor.
    _insert(pipe, [(501, "new", base + timedelta(seconds=600)), (502, "new", base + timedelta(seconds=601))])
    faults.inject(state.r, pipe.name, pipe.table("items"), 3, 1, "terminal")
    failed = pipe.sync("--wait")
    assert failed.code == 1
    run_id = failed.report["run_id"]
    meta = state.run_meta(run_id)
    assert meta["advance_from"] == "5" and int(meta["chunks"]) == 6
    assert all(c.state != "pending" for c in state.chunks(run_id)[:3])
    assert state.cursor() == committed  # not moved back to chunk 2's end

    resumed = pipe.sync("--wait")
    assert resumed.code == 0, resumed.stderr
    assert state.cursor() == (base + timedelta(seconds=601), 502)
    assert pipe.assert_synced("items") == 502


def test_the_id_strategy_refuses_keys_that_would_lose_rows(pipe: Pipe, workers: list) -> None:
    pipe.execute("CREATE TABLE order_lines (tenant_id INT NOT NULL, id INT NOT NULL, v INT,"
                 " PRIMARY KEY (tenant_id, id))",
                 "CREATE TABLE codes (code VARCHAR(20) NOT NULL PRIMARY KEY, v INT)",
                 "INSERT INTO order_lines VALUES (2, 1, 1), (2, 2, 2)", "INSERT INTO codes VALUES ('b', 1)")
    pipe.write({"order_lines": {}, "codes": {}})
    refused = pipe.sync("--wait")
    assert refused.code == 2 and "nothing was queued" in refused.stderr
    assert "composite key (tenant_id, id)" in refused.stderr and "strategy: timestamp" in refused.stderr
    assert "cursor_increasing: true" in refused.stderr
    assert "'code' is varchar(20)" in refused.stderr
    assert pipe.state("order_lines").runs() == [] and pipe.state("codes").runs() == []

    # Declared increasing, the cursor column leads the keyset: a row added later under a
    # smaller tenant is still read.
    pipe.write({"order_lines": {"cursor": "id", "cursor_increasing": True}})
    assert pipe.sync("--wait").code == 0
    pipe.execute("INSERT INTO order_lines VALUES (1, 3, 3)")
    second = pipe.sync("--wait")
    assert second.code == 0, second.stderr
    assert second.report["table_metrics"][pipe.table("order_lines")]["rows_processed"] == 1
    assert pipe.assert_synced("order_lines") == 3


def test_rows_of_the_repeated_autumn_hour_are_read(pipe: Pipe, workers: list) -> None:
    """Europe/Paris, 2026-10-25: clocks go back from 03:00 to 02:00, so DATETIME values
    02:00-02:59 happen twice. Rows written in the second pass sort behind the cursor
    the first pass left; the run's lookback is widened to the start of that hour."""
    pipe.execute(DDL)
    first_pass = datetime(2026, 10, 25, 1, 50)
    _insert(pipe, [(i, "first pass", first_pass + timedelta(minutes=i)) for i in range(1, 70)])  # to 02:59
    pipe.use_source(datetime_time_zone="Europe/Paris")
    pipe.write({"items": {"strategy": "timestamp", "cursor": "updated_at", "lag_s": 0, "lookback_s": 300}},
               chunk_rows=20)
    assert pipe.sync("--wait").code == 0
    assert pipe.state("items").cursor()[0] == datetime(2026, 10, 25, 2, 59)
    # The second pass through 02:00-02:59 (after 03:00 CEST became 02:00 CET).
    _insert(pipe, [(100 + i, "second pass", datetime(2026, 10, 25, 2, 5) + timedelta(minutes=i))
                   for i in range(10)])
    assert pipe.sync("--wait").code == 0
    assert pipe.assert_synced("items") == 79


def test_the_repeated_hour_is_found_only_where_clocks_go_back() -> None:
    paris = zones.resolve("Europe/Paris")
    assert zones.repeated_start(paris, datetime(2026, 10, 25, 0, 0), datetime(2026, 10, 25, 5, 0)) == \
        datetime(2026, 10, 25, 2, 0)
    assert zones.repeated_start(paris, datetime(2026, 3, 29, 0, 0), datetime(2026, 3, 29, 5, 0)) is None
    assert zones.repeated_start(zones.resolve("+01:00"), datetime(2026, 10, 25), datetime(2026, 10, 26)) is None
    cursor = datetime(2026, 10, 25, 2, 59)
    assert zones.widen_for_repeats(paris, cursor, timedelta(seconds=300)) == datetime(2026, 10, 25, 1, 55)
    assert zones.widen_for_repeats(paris, datetime(2026, 7, 1), timedelta(seconds=300)) == \
        datetime(2026, 6, 30, 23, 55)
    assert zones.widen_for_repeats(None, cursor, timedelta(0)) == cursor


def test_tinyint1_values_other_than_0_and_1_are_refused_not_made_true(pipe: Pipe, workers: list) -> None:
    pipe.execute("CREATE TABLE flags (id INT NOT NULL PRIMARY KEY, f TINYINT(1))",
                 "INSERT INTO flags VALUES (1, 0), (2, 1), (3, NULL), (4, 2), (5, -1)")
    pipe.write({"flags": {}})
    refused = pipe.sync("--wait")
    assert refused.code == 1
    error = refused.report["table_metrics"][pipe.table("flags")]["error"]
    assert "column f" in error and "tinyint1_as_bool: false" in error
    assert pipe.pg().execute("SELECT to_regclass(%s)", (f'"{pipe.db}".flags',)).fetchone()[0] is None
    assert pipe.ferry("watermark", "reset", "-p", pipe.name, "-t", pipe.table("flags"), "--yes").returncode == 0
    pipe.write({"flags": {"tinyint1_as_bool": False}})
    assert pipe.sync("--wait").code == 0
    assert dict(pipe.pg().execute(f'SELECT id, f FROM "{pipe.db}".flags')) == {1: 0, 2: 1, 3: None, 4: 2, 5: -1}
