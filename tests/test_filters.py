"""`where:` per table: a row filter added to every read (chunks, probes, counts, verify,
reconcile) on the real MySQL source, PostgreSQL target, S3 server and Celery workers; the
target is compared with the rows the filter selects, value by value."""
from __future__ import annotations

import json

import pytest

from common.model.row_filter import check_expression, protect
from tests.conftest import Pipe
from tests.test_reconcile import reconcile

WHERE = "status <> 'test' AND note NOT LIKE '%skip%'"


def _seed(pipe: Pipe, n: int = 300) -> None:
    pipe.execute("CREATE TABLE orders (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, status VARCHAR(10) NOT NULL,"
                 " note VARCHAR(40) NOT NULL, amount DECIMAL(10,2), updated_at DATETIME(6) NOT NULL,"
                 " KEY ix_updated (updated_at, id))")
    pipe.mysql().cursor().executemany(
        "INSERT INTO orders (status, note, amount, updated_at) VALUES (%s, %s, %s, %s)",
        [(("open", "test", "paid")[i % 3], "please skip" if i % 7 == 0 else f"n{i}", f"{i}.25",
          f"2024-01-01 00:{i // 60:02d}:{i % 60:02d}") for i in range(n)])


def _expected(pipe: Pipe) -> int:
    cur = pipe.mysql().cursor()
    cur.execute(f"SELECT COUNT(*) FROM orders WHERE {WHERE}")
    return int(cur.fetchone()[0])


def _target_ids(pipe: Pipe) -> set[int]:
    return {r[0] for r in pipe.pg().execute(f'SELECT id FROM "{pipe.db}".orders').fetchall()}


@pytest.mark.parametrize("strategy, reader", [("id", "duckdb"), ("timestamp", "duckdb"), ("full", "duckdb"),
                                              ("timestamp", "connector")])
def test_a_filter_composes_with_each_strategy_and_a_row_leaving_it_counts_as_deleted(
        pipe: Pipe, workers: list, strategy: str, reader: str) -> None:
    _seed(pipe)
    entry: dict = {"where": WHERE, "strategy": strategy, "reader": reader}
    if strategy == "timestamp":
        entry["cursor"] = "updated_at"
    pipe.write({"orders": entry}, chunk_rows=40, lookback_s=0, lag_s=0)
    result = pipe.sync("--wait")
    assert result.code == 0, result.stderr
    assert pipe.assert_synced("orders", where=WHERE) == _expected(pipe) < 300
    chunks = pipe.state("orders").chunks(result.report["run_id"])
    assert len(chunks) > 2 and sum(c.rows for c in chunks) == _expected(pipe)  # the ranges tile the filtered rows
    # A row leaves the filter, one enters it (both updated), and a new row comes in each way.
    # (id 3 is 'paid', in the filter; id 2 is 'test', out of it.)
    pipe.execute("UPDATE orders SET status = 'test', updated_at = '2025-01-01 00:00:01' WHERE id = 3",
                 "UPDATE orders SET status = 'open', updated_at = '2025-01-01 00:00:02' WHERE id = 2",
                 "INSERT INTO orders (status, note, amount, updated_at) VALUES"
                 " ('open', 'new', 1, '2025-01-01 00:00:03'), ('test', 'new', 2, '2025-01-01 00:00:04')")
    assert 3 in _target_ids(pipe) and 2 not in _target_ids(pipe)
    result = pipe.sync("--wait")
    assert result.code == 0, result.stderr
    ids = _target_ids(pipe)
    assert 301 in ids and 302 not in ids  # new rows: only the one the filter selects
    if strategy == "full":  # each run replaces the whole target with the filtered rows
        assert 3 not in ids and 2 in ids
    else:
        # The cursor's strategies never delete: the row that left the filter stays until a
        # reconcile, which treats it as deleted (the id strategy also misses row 2 until then).
        assert 3 in ids and (2 in ids) == (strategy == "timestamp")
        out = pipe.ferry("verify", "-p", pipe.name, "-t", pipe.table("orders"), "--json")
        assert out.returncode == 1, out.stdout + out.stderr
        report = json.loads(out.stdout)
        assert any("filter" in n for n in report["notes"])
        code, doc, text = reconcile(pipe, "orders", "--wait")
        assert code == 0, text
        ids = _target_ids(pipe)
        assert 3 not in ids and 2 in ids
    assert pipe.assert_synced("orders", where=WHERE) == _expected(pipe)
    out = pipe.ferry("verify", "-p", pipe.name, "-t", pipe.table("orders"), "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads(out.stdout)["source_rows"] == _expected(pipe)


def test_a_filter_the_server_refuses_stops_check_and_sync_before_anything_is_queued(pipe: Pipe) -> None:
    _seed(pipe, 10)
    pipe.write({"orders": {"where": "no_such_column = 1"}})
    out = pipe.ferry("check", "-p", pipe.name)
    assert out.returncode == 2
    assert f"pipelines/{pipe.name}.yml" in out.stdout and pipe.table("orders") in out.stdout
    assert "no_such_column" in out.stdout and "Unknown column" in out.stdout
    result = pipe.sync("--wait")
    assert result.code == 2
    assert "Unknown column" in result.stderr and "nothing was queued" in result.stderr
    state = pipe.state("orders")
    assert state.schema() is None and state.cursor() is None and state.lock_owner() is None
    tables = pipe.pg().execute("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s",
                               (pipe.db,)).fetchone()[0]
    assert tables == 0


@pytest.mark.parametrize("where, says", [
    ("1) OR (1", "closes a parenthesis"), ("status = 'open'; DELETE FROM orders", "';'"),
    ("status = 'open' -- )", "comment"), ("(status = 'open'", "never closed"), ("status = 'open", "never closed"),
])
def test_a_filter_that_could_reach_outside_its_parentheses_is_a_config_error(pipe: Pipe, where: str,
                                                                             says: str) -> None:
    _seed(pipe, 10)
    pipe.write({"orders": {"where": where}})
    out = pipe.ferry("check", "-p", pipe.name)
    assert out.returncode == 2
    assert f"{pipe.name}.yml" in out.stderr and "where" in out.stderr and says in out.stderr, out.stderr


def test_the_expression_check_keeps_quotes_and_escapes() -> None:
    assert check_expression("  name = 'it''s (not) a paren' ") == "name = 'it''s (not) a paren'"
    assert check_expression(r"name = 'a\' ) b'") == r"name = 'a\' ) b'"
    assert check_expression("`weird)col` > 0 AND (a OR b)") == "`weird)col` > 0 AND (a OR b)"
    assert protect("note LIKE '%skip%' AND `a` % sx > 0 AND n = \"50%s\"") == \
        "note LIKE '%' 'skip%' AND `a` % sx > 0 AND n = \"50%\" \"s\""
    assert protect("x%s") == "x% s"
    for bad in ("a) OR (b", "a /* x */", "a # x", "`x%s` = 1", ""):
        with pytest.raises(ValueError):
            check_expression(bad)
