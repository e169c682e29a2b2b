"""Checks before anything is queued: `ferry check`, the same checks in `ferry sync`, and
`ferry connections test`, against the real MySQL and PostgreSQL."""
from __future__ import annotations

import yaml

from tests.conftest import Pipe


def test_check_passes_a_sound_pipeline_and_refuses_a_timestamp_cursor_without_an_index(pipe: Pipe) -> None:
    """Without an index that starts with the cursor every plan probe scans the table: refused,
    at check and at sync (nothing queued), with the index to create; with it, all is well."""
    pipe.execute("CREATE TABLE orders (id INT NOT NULL PRIMARY KEY, v INT)",
                 "CREATE TABLE events (id INT NOT NULL PRIMARY KEY, at DATETIME(6) NOT NULL)")
    pipe.write({"orders": {}, "events": {"strategy": "timestamp", "cursor": "at"}})
    out = pipe.ferry("check", "-p", pipe.name)
    assert out.returncode == 2, out.stdout + out.stderr
    assert f"ok    {pipe.table('orders')}" in out.stdout and f"FAIL  {pipe.table('events')}" in out.stdout
    assert "no index starts with the cursor 'at'" in out.stdout
    assert f"CREATE INDEX ix_events_at ON `{pipe.db}`.`events` (`at`, `id`)" in out.stdout, out.stdout
    refused = pipe.ferry("sync", "-p", pipe.name, "-t", pipe.table("events"))
    assert refused.returncode == 2 and "no index starts with the cursor 'at'" in refused.stderr
    assert pipe.state("events").runs() == []
    pipe.execute("CREATE INDEX ix_events_at ON events (at, id)")
    out = pipe.ferry("check", "-p", pipe.name)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"ok    {pipe.table('events')}" in out.stdout and "ok    target pg" in out.stdout


def test_check_and_sync_refuse_a_missing_table_a_misspelt_cursor_and_a_nullable_key(pipe: Pipe) -> None:
    pipe.execute("CREATE TABLE events (id INT NOT NULL PRIMARY KEY, updated_at DATETIME NOT NULL)",
                 "CREATE TABLE loose (id INT NULL, v INT, UNIQUE KEY (id))")
    pipe.write({"events": {"strategy": "timestamp", "cursor": "updated_on"},
                "ghost": {}, "loose": {"primary_key": ["id"]}})
    out = pipe.ferry("check", "-p", pipe.name)
    assert out.returncode == 2
    assert f"FAIL  {pipe.table('ghost')}" in out.stdout and "not found in the source" in out.stdout
    assert "no column 'updated_on'" in out.stdout
    assert "key column 'id' is nullable" in out.stdout
    synced = pipe.sync("--wait")
    assert synced.code == 2 and "nothing was queued" in synced.stderr
    assert "updated_on" in synced.stderr and pipe.table("ghost") in synced.stderr
    for table in ("events", "ghost", "loose"):
        assert pipe.state(table).runs() == []
    assert pipe.state("events").r.llen("plan") == 0  # no message for a worker either


def test_connections_test_reports_each_one_without_secrets(pipe: Pipe) -> None:
    path = pipe.config_dir / "connections.yml"
    saved = path.read_text()
    conns = yaml.safe_load(saved)
    conns["sources"]["broken"] = dict(conns["sources"]["mysql"], port=1, password="s3cret-Pa55")
    path.write_text(yaml.safe_dump(conns))
    try:
        out = pipe.ferry("connections", "test")
        one = pipe.ferry("connections", "test", "mysql")
        unknown = pipe.ferry("connections", "test", "nope")
    finally:
        path.write_text(saved)
    assert out.returncode == 1
    assert "ok    source mysql:" in out.stdout and "ok    target pg:" in out.stdout
    assert "FAIL  source broken:" in out.stdout
    assert "s3cret-Pa55" not in out.stdout + out.stderr
    assert one.returncode == 0 and one.stdout.count("\n") == 1
    assert unknown.returncode == 2 and "no source or target named 'nope'" in unknown.stderr


def test_redshift_keys_naming_an_unknown_column_is_refused_before_anything_is_queued(pipe: Pipe) -> None:
    pipe.execute("CREATE TABLE orders (id INT NOT NULL PRIMARY KEY, shop INT)")
    pipe.write({"orders": {}})
    path = pipe.config_dir / "pipelines" / f"{pipe.name}.yml"
    doc = yaml.safe_load(path.read_text())
    doc["redshift_keys"] = {pipe.table("orders"): {"distkey": "shop_id", "sortkey": ["id"]}}
    path.write_text(yaml.safe_dump(doc))
    out = pipe.ferry("check", "-p", pipe.name)
    assert out.returncode == 2 and "redshift_keys names column 'shop_id'" in out.stdout
    synced = pipe.sync()
    assert synced.code == 2 and "shop_id" in synced.stderr and pipe.state("orders").runs() == []


def test_check_compares_the_buckets_region_with_the_redshift_clusters(pipe: Pipe) -> None:
    """A Parquet COPY takes no REGION: "The Amazon S3 bucket must be in the same AWS Region as
    the Amazon Redshift database" (copy-usage_notes-copy-from-columnar.html). The test bucket
    (the S3 server's) is in us-east-1; no cluster listens, so the target also fails to connect."""
    pipe.execute("CREATE TABLE orders (id INT NOT NULL PRIMARY KEY)")
    path = pipe.config_dir / "connections.yml"
    saved = path.read_text()
    conns = yaml.safe_load(saved)
    cluster = {"type": "redshift", "host": "127.0.0.1", "port": 1, "database": "dev", "user": "loader"}
    conns["targets"]["rs-west"] = dict(cluster, region="eu-west-1")
    conns["targets"]["rs-east"] = dict(cluster, region="us-east-1")
    conns["targets"]["rs-unknown"] = cluster
    path.write_text(yaml.safe_dump(conns))
    out = {}
    try:
        for target in ("rs-west", "rs-east", "rs-unknown"):
            (pipe.config_dir / "pipelines" / f"{pipe.name}.yml").write_text(yaml.safe_dump({
                "source": "mysql", "target": target, "s3_prefix": pipe.name, "target_schema": pipe.db,
                "tables": {pipe.table("orders"): {}}}))
            out[target] = pipe.ferry("check", "-p", pipe.name)
    finally:
        path.write_text(saved)
    bucket = yaml.safe_load(saved)["s3"]["bucket"]
    west = out["rs-west"]
    assert west.returncode == 2
    assert (f"error: s3 bucket {bucket} is in us-east-1, the Redshift cluster of target rs-west in eu-west-1: "
            f"a Parquet COPY takes no REGION") in west.stdout, west.stdout
    assert "is in us-east-1, the Redshift cluster" not in out["rs-east"].stdout
    assert f"s3 bucket {bucket} and the cluster are both in us-east-1" in out["rs-east"].stdout
    assert "set `region:` on target rs-unknown" in out["rs-unknown"].stdout
    assert pipe.state("orders").runs() == []


def test_the_clusters_region_is_read_from_its_host_name() -> None:
    from common.config.connections import RedshiftTarget

    def region(host: str, **kw: str) -> str | None:
        return RedshiftTarget(type="redshift", host=host, database="dev", user="u", **kw).cluster_region()

    assert region("examplecluster.abc123xyz789.us-west-2.redshift.amazonaws.com") == "us-west-2"
    assert region("wg.123456789012.eu-central-1.redshift-serverless.amazonaws.com") == "eu-central-1"
    assert region("c.x.cn-north-1.redshift.amazonaws.com.cn") == "cn-north-1"
    assert region("c.x.us-gov-west-1.redshift.amazonaws.com") == "us-gov-west-1"
    assert region("redshift.internal.example.com") is None
    assert region("redshift.internal.example.com", region="ap-south-1") == "ap-south-1"
