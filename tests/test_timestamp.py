"""The timestamp cursor: (updated_at, id) keysets, microseconds, lag, lookback, NULL cursors."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tests.conftest import Pipe


def _utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


DDL = """CREATE TABLE items (
  id INT NOT NULL PRIMARY KEY,
  name VARCHAR(40),
  price DECIMAL(10,2),
  updated_at DATETIME(6) NULL,
  KEY (updated_at, id)
)"""


def _insert(pipe: Pipe, rows: list[tuple]) -> None:
    cur = pipe.mysql().cursor()
    cur.executemany("INSERT INTO items VALUES (%s, %s, %s, %s)", rows)


def test_twenty_thousand_rows_with_one_timestamp(pipe: Pipe, workers: list) -> None:
    pipe.execute(DDL)
    stamp = datetime(2024, 5, 1, 12, 0, 0, 123456)
    _insert(pipe, [(i, f"item {i}", i / 100, stamp) for i in range(1, 20_001)])
    pipe.write({"items": {"strategy": "timestamp", "cursor": "updated_at", "lag_s": 0, "lookback_s": 0}},
               chunk_rows=1000)
    result = pipe.sync("--wait")
    assert result.code == 0, result.stderr
    chunks = pipe.state("items").chunks(result.report["run_id"])
    assert len(chunks) == 20 and all(c.rows == 1000 for c in chunks)
    assert all(c.hi[0] == stamp for c in chunks)  # every boundary is inside the one timestamp
    assert pipe.assert_synced("items") == 20_000
    assert pipe.state("items").cursor() == (stamp, 20_000)


def test_updates_late_rows_lag_and_null_cursors(pipe: Pipe, workers: list) -> None:
    pipe.execute(DDL)
    base = _utcnow().replace(microsecond=0) - timedelta(hours=1)
    _insert(pipe, [(i, f"v1-{i}", i, base + timedelta(microseconds=i)) for i in range(1, 501)])
    _insert(pipe, [(900, "no cursor", 1, None), (901, "no cursor", 2, None)])
    # A row stamped 30 s ahead of the source clock is inside the lag: not this run.
    _insert(pipe, [(950, "future", 9, _utcnow() + timedelta(seconds=30))])
    pipe.write({"items": {"strategy": "timestamp", "cursor": "updated_at", "lag_s": 10,
                          "lookback_s": 120}}, chunk_rows=100)
    first = pipe.sync("--wait")
    assert first.code == 0, first.stderr
    metrics = first.report["table_metrics"][pipe.table("items")]
    assert metrics["rows_processed"] == 500 and metrics["null_cursor_rows"] == 2
    assert "2 rows have a NULL cursor and were not copied" in first.stderr
    pg = pipe.pg()
    ids = {r[0] for r in pg.execute(f'SELECT id FROM "{pipe.db}".items')}
    assert ids == set(range(1, 501))  # neither the NULL-cursor rows nor the future row
    # Cursor microseconds are kept: the 500th row's stamp ends in .000500.
    assert pipe.state("items").cursor() == (base + timedelta(microseconds=500), 500)

    # Updates move rows forward; a "late" row commits with a stamp behind the cursor
    # but inside the lookback window; new rows arrive.
    now = _utcnow() - timedelta(seconds=20)
    pipe.execute(f"UPDATE items SET name = 'v2', updated_at = '{now}' WHERE id IN (1, 250)")
    _insert(pipe, [(600, "late", 6, base + timedelta(seconds=30)), (601, "new", 7, now)])
    second = pipe.sync("--wait")
    assert second.code == 0, second.stderr
    names = dict(pg.execute(f'SELECT id, name FROM "{pipe.db}".items WHERE id IN (1, 250, 600, 601)'))
    assert names == {1: "v2", 250: "v2", 600: "late", 601: "new"}
    count = pg.execute(f'SELECT count(*) FROM "{pipe.db}".items').fetchone()[0]
    assert count == 502  # 500 + late + new; no duplicates although the lookback re-read rows

    # Once the future row is older than the lag, it is copied too; then all matches.
    pipe.execute(f"UPDATE items SET updated_at = '{_utcnow() - timedelta(seconds=15)}' WHERE id = 950",
                 "UPDATE items SET updated_at = '2020-01-01' WHERE updated_at IS NULL")
    third = pipe.sync("--wait")
    assert third.code == 0, third.stderr
    # The rows once NULL now sit before the cursor and its lookback: the cursor cannot
    # see them; a reset of the cursor brings them in.
    assert pipe.ferry("watermark", "set", "-p", pipe.name, "-t", pipe.table("items"),
                      "--timestamp", "2019-12-31").returncode == 0
    fourth = pipe.sync("--wait")
    assert fourth.code == 0, fourth.stderr
    assert pipe.assert_synced("items") == 505  # 500 + 600, 601 + 900, 901 + 950


def test_older_version_never_overwrites_a_newer_one(pipe: Pipe, workers: list) -> None:
    """Parts are merged by key with the cursor as version: loading an old run's parts
    after a newer one (here: --load-only of an extract-only run) keeps the newer row."""
    pipe.execute(DDL)
    t0 = _utcnow() - timedelta(minutes=10)
    _insert(pipe, [(1, "old", 1, t0), (2, "old", 2, t0)])
    pipe.write({"items": {"strategy": "timestamp", "cursor": "updated_at", "lag_s": 0,
                          "lookback_s": 0}})
    assert pipe.sync("--wait", "--extract-only").code == 0
    pipe.execute(f"UPDATE items SET name = 'new', updated_at = '{t0 + timedelta(minutes=5)}' WHERE id = 1")
    assert pipe.sync("--wait").code == 0  # loads both runs' parts, the older first
    pg = pipe.pg()
    assert dict(pg.execute(f'SELECT id, name FROM "{pipe.db}".items')) == {1: "new", 2: "old"}
    assert pipe.assert_synced("items") == 2
