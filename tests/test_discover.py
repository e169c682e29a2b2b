"""`ferry discover`: a pipeline file written from the source's information_schema, on the
Sakila sample database (nobody here wrote it) and on tables made to need each choice; the
file it writes passes `ferry check`, and every table then syncs exactly."""
from __future__ import annotations

import yaml

from tests.conftest import MYSQL, Pipe
from tests.test_sakila import _load_sakila


def _discover(pipe: Pipe, *args: str) -> tuple[int, str, str]:
    out = pipe.ferry("discover", "-s", "mysql", "--target", "pg", "--schema", pipe.db, "--target-schema", pipe.db,
                     *args)
    return out.returncode, out.stdout, out.stderr


def test_discover_on_sakila_writes_a_file_that_checks_and_syncs_every_table_exactly(pipe: Pipe,
                                                                                     workers: list) -> None:
    _load_sakila(pipe.db)
    path = pipe.config_dir / "pipelines" / f"{pipe.name}.yml"
    code, _, err = _discover(pipe, "-o", str(path))
    assert code == 0, err
    text = path.read_text()
    doc = yaml.safe_load(text)
    tables = doc["tables"]
    assert len(tables) == 16 and doc["source"] == "mysql" and doc["target"] == "pg"
    strategy = {k.split(".")[1]: v["strategy"] for k, v in tables.items()}
    # AUTO_INCREMENT single-column keys: id; composite keys and film_text's plain key: full.
    assert strategy == {t: "full" if t in ("film_actor", "film_category", "film_text") else "id"
                        for t in strategy}
    # Sakila's last_update has no index: the comment names the CREATE INDEX that would allow
    # the timestamp strategy, and why each choice was made.
    assert f"CREATE INDEX ix_actor_last_update ON `{pipe.db}`.`actor` (`last_update`, `actor_id`)" in text
    assert "a composite key (actor_id, film_id)" in text and "AUTO_INCREMENT key actor_id" in text
    # Nothing secret: names only.
    assert MYSQL["host"] not in text and "password" not in text.lower() and "testing" not in text
    out = pipe.ferry("check", "-p", pipe.name)
    assert out.returncode == 0, out.stdout + out.stderr
    result = pipe.sync("--wait", timeout_s=300)
    assert result.code == 0, result.stderr
    counts = {t: pipe.assert_synced(t) for t in strategy}
    assert counts["rental"] == 16044 and counts["payment"] == 16049 and counts["film_actor"] == 5462
    assert all(counts.values())


def test_discover_chooses_by_index_key_and_type_and_explains_it(pipe: Pipe) -> None:
    pipe.execute(
        "CREATE TABLE events (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, updated_at DATETIME(6) NOT NULL"
        " DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6), body TEXT, KEY ix_upd (updated_at))",
        "CREATE TABLE codes (code VARCHAR(10) NOT NULL, label TEXT, UNIQUE KEY uq_code (code))",
        "CREATE TABLE loose (a INT, b TEXT)",
        "CREATE TABLE hosts (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, addr INET6, name VARCHAR(20))",
        "CREATE TABLE other (id INT NOT NULL PRIMARY KEY)",
        "CREATE TABLE tenant_orders (tenant_id INT NOT NULL, id INT NOT NULL AUTO_INCREMENT, total INT,"
        " PRIMARY KEY (tenant_id, id), KEY ix_id (id))")
    code, text, err = _discover(pipe, "--tables", "events,codes,loose,host*,tenant_*")
    assert code == 0, err
    tables = yaml.safe_load(text)["tables"]
    key = pipe.table
    assert set(tables) == {key("events"), key("codes"), key("hosts"), key("tenant_orders")}  # loose: commented out
    assert tables[key("tenant_orders")] == {"strategy": "id", "cursor": "id", "cursor_increasing": True}
    assert tables[key("events")] == {"strategy": "timestamp", "cursor": "updated_at"}
    assert "last-modified column updated_at with index ix_upd" in text
    assert tables[key("codes")] == {"primary_key": ["code"], "strategy": "full"}
    assert "UNIQUE index on (code) is the key" in text and "VARCHAR key" in text
    assert tables[key("hosts")] == {"strategy": "id", "exclude_columns": ["addr"]}
    assert "- \"addr\"  # type inet6 is not supported" in text
    assert f"# {key('loose')}: not copied: no primary key and no UNIQUE index" in text
    # The file it wrote passes `ferry check` as written.
    path = pipe.config_dir / "pipelines" / f"{pipe.name}.yml"
    path.write_text(text)
    out = pipe.ferry("check", "-p", pipe.name)
    assert out.returncode == 0, out.stdout + out.stderr


def test_discover_refuses_bad_input_and_keeps_an_existing_file(pipe: Pipe) -> None:
    pipe.execute("CREATE TABLE t (id INT NOT NULL PRIMARY KEY)")
    out = pipe.ferry("discover", "-s", "nosuch", "--target", "pg", "--schema", pipe.db)
    assert out.returncode == 2 and "no source 'nosuch'" in out.stderr
    out = pipe.ferry("discover", "-s", "mysql", "--target", "nosuch", "--schema", pipe.db)
    assert out.returncode == 2 and "no target 'nosuch'" in out.stderr
    out = pipe.ferry("discover", "-s", "mysql", "--target", "pg", "--schema", pipe.db + "_none")
    assert out.returncode == 2 and "has no base table" in out.stderr
    path = pipe.config_dir / "pipelines" / f"{pipe.name}.yml"
    path.write_text("kept: true\n")
    code, _, err = _discover(pipe, "-o", str(path))
    assert code == 2 and "exists" in err and path.read_text() == "kept: true\n"
    code, _, err = _discover(pipe, "-o", str(path), "--force")
    assert code == 0, err
    assert pipe.ferry("check", "-p", pipe.name).returncode == 0
