"""`ferry watermark set / reset / rebuild` against real services."""
from __future__ import annotations

import json
from datetime import datetime

import pytest

from common.model.bounds import parse_timestamp
from common.model import naming
from tests.conftest import Pipe
from tests.test_sync import _seed


def _get(pipe: Pipe, table: str) -> dict:
    r = pipe.ferry("watermark", "get", "-p", pipe.name, "-t", pipe.table(table), "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_set_id_cursor_then_sync_reads_after_it(pipe: Pipe, workers: list) -> None:
    _seed(pipe, "orders", 1_000)
    pipe.write({"orders": {}}, chunk_rows=300)
    state = pipe.state("orders")
    state.acquire_lock("r-busy", 60)
    refused = pipe.ferry("watermark", "set", "-p", pipe.name, "-t", pipe.table("orders"), "--id", "10")
    assert refused.returncode == 1 and "active run r-busy" in refused.stderr
    assert state.cursor() is None
    state.finish_run("r-busy", "failed", "test")

    cur = pipe.mysql().cursor()
    cur.execute("SELECT id FROM orders ORDER BY id LIMIT 1 OFFSET 599")
    six_hundredth = cur.fetchone()[0]
    ok = pipe.ferry("watermark", "set", "-p", pipe.name, "-t", pipe.table("orders"), "--id", str(six_hundredth))
    assert ok.returncode == 0, ok.stderr
    result = pipe.sync("--wait")
    assert result.code == 0, result.stderr
    assert result.report["table_metrics"][pipe.table("orders")]["rows_processed"] == 400
    bad = pipe.ferry("watermark", "set", "-p", pipe.name, "-t", pipe.table("orders"), "--timestamp", "2024-01-01")
    assert bad.returncode == 2 and "id strategy" in bad.stderr


def test_set_timestamp_keeps_the_id_part_and_the_reverse(pipe: Pipe, workers: list) -> None:
    pipe.execute("CREATE TABLE ev (id INT PRIMARY KEY, at DATETIME(6) NOT NULL, KEY (at, id))",
                 "INSERT INTO ev VALUES (1, '2024-01-01 10:00:00.000001'), (2, '2024-01-02 10:00:00')")
    pipe.write({"ev": {"strategy": "timestamp", "cursor": "at", "lag_s": 0, "lookback_s": 0}})
    assert pipe.sync("--wait").code == 0
    state = pipe.state("ev")
    assert state.cursor() == (datetime(2024, 1, 2, 10), 2)
    args = ["watermark", "set", "-p", pipe.name, "-t", pipe.table("ev")]
    assert pipe.ferry(*args, "--timestamp", "2024-01-01T09:00:00Z").returncode == 0
    assert state.cursor() == (datetime(2024, 1, 1, 9), 2)
    assert pipe.ferry(*args, "--id", "7").returncode == 0
    assert state.cursor() == (datetime(2024, 1, 1, 9), 7)
    bad = pipe.ferry(*args, "--timestamp", "last tuesday")
    assert bad.returncode == 2 and "cannot parse 'last tuesday' as a timestamp" in bad.stderr
    assert state.cursor() == (datetime(2024, 1, 1, 9), 7)


def test_reset_needs_yes_and_forgets_everything(pipe: Pipe, workers: list) -> None:
    _seed(pipe, "orders", 800)
    pipe.write({"orders": {}}, chunk_rows=300)
    assert pipe.sync("--wait").code == 0
    args = ["watermark", "reset", "-p", pipe.name, "-t", pipe.table("orders")]
    refused = pipe.ferry(*args)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert _get(pipe, "orders")["rows_extracted"] == 800
    files = [k for k, _ in pipe.store.list(f"ferry/{pipe.name}/")]
    kept = pipe.ferry(*args, "--yes", "--keep-files")
    assert kept.returncode == 0, kept.stderr
    assert sorted(k for k, _ in pipe.store.list(f"ferry/{pipe.name}/")) == sorted(files)
    assert _get(pipe, "orders")["cursor"] is None
    again = pipe.sync("--wait")  # from the start; the merge keeps the target exact
    assert again.report["table_metrics"][pipe.table("orders")]["rows_processed"] == 800
    assert pipe.assert_synced("orders") == 800
    gone = pipe.ferry(*args, "--yes")
    assert gone.returncode == 0 and list(pipe.store.list(f"ferry/{pipe.name}/")) == []


def test_rebuild_after_redis_lost_everything(pipe: Pipe, workers: list) -> None:
    _seed(pipe, "orders", 3_000)
    pipe.write({"orders": {}}, chunk_rows=1000)
    assert pipe.sync("--wait").code == 0
    _seed(pipe, "orders", 1_500, append=True)
    assert pipe.sync("--wait", "--extract-only").code == 0  # 2 chunks extracted, not loaded
    before = _get(pipe, "orders")
    assert before["rows_extracted"] == 4_500 and before["rows_loaded"] == 3_000
    state = pipe.state("orders")
    for key in state.r.scan_iter(naming.pipeline_pattern(pipe.name)):
        state.r.delete(key)
    assert _get(pipe, "orders")["cursor"] is None

    rebuilt = pipe.ferry("watermark", "rebuild", "-p", pipe.name, "-t", pipe.table("orders"))
    assert rebuilt.returncode == 0, rebuilt.stderr
    after = _get(pipe, "orders")
    for field in ("cursor", "rows_extracted", "files_extracted", "rows_loaded", "files_loaded",
                  "parts_awaiting_load", "rows_awaiting_load"):
        assert after[field] == before[field], field

    _seed(pipe, "orders", 700, append=True)
    result = pipe.sync("--wait")
    assert result.code == 0, result.stderr
    assert result.report["table_metrics"][pipe.table("orders")]["rows_processed"] == 700  # no repeat
    totals = _get(pipe, "orders")
    assert totals["rows_extracted"] == totals["rows_loaded"] == 5_200
    assert pipe.assert_synced("orders") == 5_200


@pytest.mark.parametrize("text, expected", [
    ("2024-01-31", datetime(2024, 1, 31)),
    ("2024-01-31 12:00:00.000001", datetime(2024, 1, 31, 12, 0, 0, 1)),
    ("2024-01-31T14:00:00+02:00", datetime(2024, 1, 31, 12)),
    ("2024-01-31T12:00:00Z", datetime(2024, 1, 31, 12)),
    ("1706702400", datetime(2024, 1, 31, 12)),
    (b"2024-01-31 12:00:00", datetime(2024, 1, 31, 12)),
])
def test_parse_timestamp(text: str, expected: datetime) -> None:
    assert parse_timestamp(text) == expected


def test_parse_timestamp_says_what_it_cannot_parse() -> None:
    with pytest.raises(ValueError, match="cannot parse '31/01/2024'"):
        parse_timestamp("31/01/2024")
    with pytest.raises(ValueError, match="cannot parse \\[1\\]"):
        parse_timestamp([1])


def test_set_refuses_a_key_that_does_not_fit_before_any_sync(pipe: Pipe, workers: list) -> None:
    _seed(pipe, "orders", 10)
    pipe.write({"orders": {}})
    r = pipe.ferry("watermark", "set", "-p", pipe.name, "-t", pipe.table("orders"), "--id", "abc")
    assert r.returncode == 2 and "--id 'abc': column id is bigint" in r.stderr
    assert pipe.state("orders").cursor() is None
    ok = pipe.ferry("watermark", "set", "-p", pipe.name, "-t", pipe.table("orders"), "--id", "5")
    assert ok.returncode == 0 and pipe.state("orders").cursor() == (5,)


def test_rebuild_keeps_a_cursor_set_by_hand(pipe: Pipe, workers: list) -> None:
    _seed(pipe, "orders", 600)
    pipe.write({"orders": {}}, chunk_rows=200)
    assert pipe.sync("--wait").code == 0
    assert pipe.ferry("watermark", "set", "-p", pipe.name, "-t", pipe.table("orders"), "--id", "0").returncode == 0
    state = pipe.state("orders")
    for key in state.r.scan_iter(naming.pipeline_pattern(pipe.name)):
        state.r.delete(key)
    r = pipe.ferry("watermark", "rebuild", "-p", pipe.name, "-t", pipe.table("orders"))
    assert r.returncode == 0 and "cursor restored from the last `watermark set`" in r.stdout
    assert state.cursor() == (0,)
    again = pipe.sync("--wait")  # the copy from the start that the user asked for
    assert again.report["table_metrics"][pipe.table("orders")]["rows_processed"] == 600
    assert pipe.assert_synced("orders") == 600


def test_limit_with_a_lookback_still_moves_forward(pipe: Pipe, workers: list) -> None:
    pipe.execute("CREATE TABLE ev (id INT PRIMARY KEY, at DATETIME(6) NOT NULL, KEY (at, id))",
                 "INSERT INTO ev SELECT seq, '2024-01-01' + INTERVAL seq * 100000 MICROSECOND FROM seq_1_to_1000")
    pipe.write({"ev": {"strategy": "timestamp", "cursor": "at", "lag_s": 0, "lookback_s": 300}},
               chunk_rows=100)
    for _ in range(5):
        assert pipe.sync("--wait", "--limit", "200").code == 0
    assert pipe.state("ev").cursor()[1] == 1000
    assert pipe.assert_synced("ev") == 1000
