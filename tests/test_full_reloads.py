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


def test_a_swap_is_refused_when_the_loader_cannot_see_every_grant(pipe: Pipe, workers: list) -> None:
    """A loader that is not a superuser sees only the grants it is party to (Redshift's
    SVV_RELATION_PRIVILEGES without ACCESS SYSTEM TABLE; PostgreSQL's table_privileges
    likewise): a swap would drop the others. `ferry check` says what the loader lacks, the
    swap is refused before anything changes (same table, same grants), and
    `full_reload: delete_insert` (which keeps the table object) then loads."""
    import secrets

    import yaml

    token = secrets.token_hex(3)
    loader, mid = f"ferry_loader_{token}", f"ferry_mid_{token}"
    _reader_role()
    with psycopg.connect(PG_DSN, autocommit=True) as pg:
        pg.execute(f"CREATE ROLE {loader} LOGIN")
        pg.execute(f"CREATE ROLE {mid}")
        pg.execute(f"GRANT CREATE ON DATABASE test TO {loader}")
    path = pipe.config_dir / "connections.yml"
    saved = path.read_text()
    conns = yaml.safe_load(saved)
    conns["targets"][f"pg-{token}"] = dict(conns["targets"]["pg"], user=loader, password="")
    path.write_text(yaml.safe_dump(conns))
    doc = {"source": "mysql", "target": f"pg-{token}", "s3_prefix": pipe.name, "target_schema": pipe.db,
           "tables": {pipe.table("orders"): {"strategy": "full"}}}
    pipeline = pipe.config_dir / "pipelines" / f"{pipe.name}.yml"
    try:
        _seed(pipe, "orders", 300)
        pipeline.write_text(yaml.safe_dump(doc))
        first = pipe.sync("--wait")
        assert first.code == 0, first.stderr
        pg = pipe.pg()
        ref = f'"{pipe.db}".orders'
        # A grant the loader is not party to: by a role holding the grant option, to another.
        pg.execute(f'GRANT USAGE ON SCHEMA "{pipe.db}" TO {mid}, ferry_reader')
        pg.execute(f"GRANT SELECT ON {ref} TO {mid} WITH GRANT OPTION")
        pg.execute(f"SET ROLE {mid}")
        pg.execute(f"GRANT SELECT ON {ref} TO ferry_reader")
        pg.execute("RESET ROLE")
        oid = pg.execute("SELECT %s::regclass::oid", (ref,)).fetchone()[0]
        checked = pipe.ferry("check", "-p", pipe.name)
        assert checked.returncode == 2, checked.stdout
        assert (f"target {pipe.db}.orders: a full reload (full_reload: swap) replaces the table and carries its "
                f"grants over, but this loader sees only the grants it is party to") in checked.stdout
        assert "ACCESS SYSTEM TABLE" in checked.stdout and "full_reload: delete_insert" in checked.stdout
        pipe.execute("DELETE FROM orders WHERE id % 2 = 0")
        refused = pipe.sync("--wait")
        assert refused.code != 0 and "this loader sees only the grants it is party to" in refused.stderr
        assert pg.execute("SELECT %s::regclass::oid", (ref,)).fetchone()[0] == oid
        assert pg.execute("SELECT count(*) FROM " + ref).fetchone()[0] == 300
        assert pg.execute("SELECT has_table_privilege('ferry_reader', %s, 'SELECT')", (ref,)).fetchone()[0]
        doc["tables"][pipe.table("orders")]["full_reload"] = "delete_insert"
        pipeline.write_text(yaml.safe_dump(doc))
        done = pipe.sync("--wait")
        assert done.code == 0, done.stderr
        assert pg.execute("SELECT has_table_privilege('ferry_reader', %s, 'SELECT')", (ref,)).fetchone()[0]
        pipe.assert_synced("orders")
    finally:
        path.write_text(saved)
        with psycopg.connect(PG_DSN, autocommit=True) as pg:
            pg.execute(f'DROP SCHEMA IF EXISTS "{pipe.db}" CASCADE')
            for role in (loader, mid):
                pg.execute(f"DROP OWNED BY {role}")
                pg.execute(f"DROP ROLE {role}")
