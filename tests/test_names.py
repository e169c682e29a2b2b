"""Any table and column MySQL allows: spaces, quotes, `%`, non-ASCII letters, digits first,
reserved words; and tables without a key, loaded with `load: append`."""
from __future__ import annotations

import re

from common.model import naming
from tests.conftest import Pipe


def test_odd_table_and_column_names_round_trip(pipe: Pipe, workers: list) -> None:
    pipe.execute("CREATE TABLE `Order Lines é` (`order` INT NOT NULL PRIMARY KEY, `190_time` TIME,"
                 " `two words` VARCHAR(20), `50%` DECIMAL(5,2), `Straße` VARCHAR(10), `say \"hi\"` INT)",
                 "INSERT INTO `Order Lines é` VALUES (1, '10:00:00', 'a b', 12.5, 'weiß', 1),"
                 " (2, NULL, NULL, NULL, NULL, NULL), (3, '23:59:59', '%s %%', 99.99, 'ß', 3)")
    key = f'{pipe.db}."Order Lines é"'
    pipe.write({'"Order Lines é"': {}}, chunk_rows=2)
    result = pipe.sync("--wait")
    assert result.code == 0, result.stderr
    assert result.report["table_metrics"][key]["rows_processed"] == 3
    schema = pipe.schema_of('"Order Lines é"')
    assert [c.name for c in schema.columns] == ["order", "col_190_time", "two words", "col_50%", "straße", 'say "hi"']
    assert pipe.assert_synced('"Order Lines é"', target="order lines é") == 3
    # S3 keys need no escaping anywhere (manifest URLs included): the table is a lowercase
    # slug and a hash (the Redis keys keep it percent-encoded); the target is lowercased.
    keys = [k for k, _ in pipe.store.list(f"ferry/{pipe.name}/")]
    token = naming.s3_table_token(key)
    assert re.fullmatch(rf"{re.escape(pipe.db)}\.order_lines-[0-9a-f]{{8}}", token), token
    assert keys and all(k.startswith(f"ferry/{pipe.name}/{token}/") for k in keys), keys
    assert all(re.fullmatch(r"[A-Za-z0-9._/=-]+", k) for k in keys), keys  # (run ids keep their 'T')
    manifests = [k for k in keys if "/manifests/" in k] + [naming.manifest_key(naming.table_prefix(
        "ferry", pipe.name, key), "l1")]
    assert all("%" not in m and " " not in m and "+" not in m for m in manifests)
    assert pipe.ferry("check", "-p", pipe.name).returncode == 0
    # Once more: the ledger (queried with parameters) is found despite the `%`-free name.
    assert pipe.sync("--wait").code == 0


def test_target_names_fit_127_bytes_and_collisions_are_refused(pipe: Pipe, workers: list) -> None:
    long = "é" * 80  # 160 bytes
    assert len(naming.column_name(long).encode()) <= 127
    assert len(naming.ledger_table_name(naming.target_table_name(long)).encode()) <= 127
    pipe.execute("CREATE TABLE twins (id INT NOT NULL PRIMARY KEY, `190_time` INT, `col_190_time` INT)")
    pipe.write({"twins": {}})
    refused = pipe.sync("--wait")
    assert refused.code == 2
    assert "columns '190_time' and 'col_190_time' both map to target column 'col_190_time'" in refused.stderr


def test_a_table_without_a_key_is_appended_or_refused(pipe: Pipe, workers: list) -> None:
    pipe.execute("CREATE TABLE log (seq INT NOT NULL, msg VARCHAR(20))",
                 "INSERT INTO log SELECT seq, CONCAT('m', seq) FROM seq_1_to_250",
                 "INSERT INTO log VALUES (250, 'same seq twice')")
    pipe.write({"log": {}})
    refused = pipe.sync("--wait")
    assert refused.code == 2 and "has no primary key" in refused.stderr and "load: append" in refused.stderr
    pipe.write({"log": {"load": "append", "cursor": "seq"}}, chunk_rows=100)
    first = pipe.sync("--wait")
    assert first.code == 0, first.stderr
    pipe.execute("INSERT INTO log SELECT seq, 'later' FROM seq_251_to_300")
    assert pipe.sync("--wait").code == 0
    assert pipe.assert_synced("log") == 301


def test_a_mixed_case_target_schema_is_created_and_found_as_redshift_folds_it(pipe: Pipe, workers: list) -> None:
    import yaml

    pipe.execute("CREATE TABLE t (id INT NOT NULL PRIMARY KEY, v INT)", "INSERT INTO t VALUES (1, 1)")
    pipe.write({"t": {}})
    path = pipe.config_dir / "pipelines" / f"{pipe.name}.yml"
    doc = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump(dict(doc, target_schema=pipe.db.upper())))
    assert pipe.sync("--wait").code == 0
    pipe.execute("INSERT INTO t VALUES (2, 2)")
    second = pipe.sync("--wait")  # the existence checks find what the first sync created
    assert second.code == 0, second.stderr
    assert pipe.assert_synced("t") == 2  # in the lowercase schema


def test_s3_tokens_are_safe_and_distinct_and_old_keys_stay_readable() -> None:
    """S3 keys keep to [a-z0-9._=-] for the table (awslabs/aws-lambda-redshift-loader #90 and
    #204: manifest URLs with spaces or `+` broke loaders; no Redshift page says `%XX` works),
    a key already of those characters is itself (existing tables keep their prefix), and
    the legacy percent-encoded prefix is among those rebuild, reset and s3clean read."""
    assert naming.s3_table_token("shop.orders") == "shop.orders"
    odd = ["shop.Orders", "shop.orders ", "shop.Order Lines %", 'shop."a.b"', "shop.a+b", "Shop.orders", "shop.é"]
    tokens = [naming.s3_table_token(k) for k in odd]
    assert len(set(tokens)) == len(odd)
    assert all(re.fullmatch(r"[a-z0-9._=-]+", t) for t in tokens), tokens
    assert naming.s3_table_token("shop.Order Lines %").startswith("shop.order_lines-")
    assert naming.table_prefixes("ferry", "p", "shop.Order Lines %") == [
        f"ferry/p/{naming.s3_table_token('shop.Order Lines %')}/", "ferry/p/shop.Order%20Lines%20%25/"]
    assert naming.table_prefixes("ferry", "p", "shop.orders") == ["ferry/p/shop.orders/"]


def test_a_table_with_state_from_before_keeps_its_legacy_prefix(pipe: Pipe) -> None:
    """Decided once per table and kept (real Redis): a table that already has runs (written by
    a ferry that percent-encoded) stays on the legacy prefix, so no run spans two; a new one
    gets the safe prefix; `watermark rebuild` records where it found the objects."""
    old, new = pipe.state("old"), pipe.state("new")
    old.r.rpush(old.keys.runs, "r20261101T000000000-aaaaaa")
    assert old.s3_legacy() is True and old.s3_legacy() is True
    old.r.delete(old.keys.runs)
    assert old.s3_legacy() is True  # kept, whatever happens to the runs
    assert new.s3_legacy() is False
    new.set_s3_layout(legacy=True)
    assert new.s3_legacy() is True
