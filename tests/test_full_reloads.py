"""Full reloads keep what users set on the target: grants, comments and owner survive the
swap; `full_reload: delete_insert` keeps the table object itself (and views bound to it)."""
from __future__ import annotations

import psycopg

from tests.conftest import PG_DSN, Pipe
from tests.test_sync import _seed


def _reader_role() -> None:
    with psycopg.connect(PG_DSN, autocommit=True) as pg:
        if not pg.execute("SELECT 1 FROM pg_roles WHERE rolname = 'ferry_reader'").fetchone():
            pg.execute("CREATE ROLE ferry_reader")


def test_a_swapped_in_reload_keeps_grants_and_comments(pipe: Pipe, workers: list) -> None:
    _reader_role()
    _seed(pipe, "orders", 300)
    pipe.write({"orders": {"strategy": "full"}})
    assert pipe.sync("--wait").code == 0
    pg = pipe.pg()
    ref = f'"{pipe.db}".orders'
    oid = pg.execute("SELECT %s::regclass::oid", (ref,)).fetchone()[0]
    pg.execute(f"GRANT SELECT, INSERT ON {ref} TO ferry_reader")
    pg.execute(f"COMMENT ON TABLE {ref} IS 'orders, as ferry copies them'")
    pg.execute(f"COMMENT ON COLUMN {ref}.amount IS 'money: exact'")
    pipe.execute("DELETE FROM orders WHERE id % 2 = 0")
    assert pipe.sync("--wait").code == 0
    assert pg.execute("SELECT %s::regclass::oid", (ref,)).fetchone()[0] != oid  # a new table ...
    assert pg.execute("SELECT has_table_privilege('ferry_reader', %s, 'SELECT'),"
                      " has_table_privilege('ferry_reader', %s, 'INSERT')", (ref, ref)).fetchone() == (True, True)
    assert pg.execute("SELECT obj_description(%s::regclass, 'pg_class')", (ref,)).fetchone()[0] == \
        "orders, as ferry copies them"
    assert pg.execute("SELECT col_description(%s::regclass, attnum) FROM pg_attribute WHERE attrelid = "
                      "%s::regclass AND attname = 'amount'", (ref, ref)).fetchone()[0] == "money: exact"
    pipe.assert_synced("orders")


def test_delete_insert_keeps_the_table_object_and_its_views(pipe: Pipe, workers: list) -> None:
    _reader_role()
    _seed(pipe, "orders", 300)
    pipe.write({"orders": {"strategy": "full", "full_reload": "delete_insert"}})
    assert pipe.sync("--wait").code == 0
    pg = pipe.pg()
    ref = f'"{pipe.db}".orders'
    oid = pg.execute("SELECT %s::regclass::oid", (ref,)).fetchone()[0]
    pg.execute(f"GRANT SELECT ON {ref} TO ferry_reader")
    pg.execute(f'CREATE VIEW "{pipe.db}".paid AS SELECT id FROM {ref} WHERE status = \'paid\'')  # bound
    pipe.execute("DELETE FROM orders WHERE id % 3 = 0", "UPDATE orders SET status = 'paid' WHERE id % 5 = 0")
    second = pipe.sync("--wait")
    assert second.code == 0, second.stderr
    assert pg.execute("SELECT %s::regclass::oid", (ref,)).fetchone()[0] == oid
    assert pg.execute("SELECT has_table_privilege('ferry_reader', %s, 'SELECT')", (ref,)).fetchone()[0]
    cur = pipe.mysql().cursor()
    cur.execute("SELECT COUNT(*) FROM orders WHERE status = 'paid'")
    assert pg.execute(f'SELECT count(*) FROM "{pipe.db}".paid').fetchone()[0] == cur.fetchone()[0]
    pipe.assert_synced("orders")
