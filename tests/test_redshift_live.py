"""The live Redshift smoke test: the only proof of what no Redshift documentation page says
(Parquet types into column types, the ALTERs that widen what ALTER COLUMN TYPE refuses, grants carried
over). Skipped unless a cluster is given; run it with `make test-redshift`:

    FERRY_REDSHIFT_TEST_URL=postgresql://user:password@cluster.xxxx.eu-west-1.redshift.amazonaws.com:5439/dev
    FERRY_REDSHIFT_TEST_IAM_ROLE=arn:aws:iam::123456789012:role/redshift-copy   # may read the bucket
    FERRY_REDSHIFT_TEST_BUCKET=my-scratch-bucket                                # in the cluster's region
    FERRY_REDSHIFT_TEST_REGION=eu-west-1          # default us-east-1
    AWS credentials for the bucket in the usual environment (the workers write to it)

It creates a schema with a mixed-case name, syncs a table with every type of the type map at
its limits, a table whose name needs percent-encoding and a full-reload table granted to
PUBLIC, compares them value by value with MySQL, and drops the schema and the S3 prefix.
"""
from __future__ import annotations

import os
import secrets
import sys
import subprocess
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import pytest
import yaml

from tests import compare
from tests.conftest import MYSQL, REDIS_URL
from tests.services import REPO, Worker
from tests.test_types_roundtrip import DDL, INSERT, ROWS

pytestmark = pytest.mark.redshift
URL = os.environ.get("FERRY_REDSHIFT_TEST_URL")
ROLE = os.environ.get("FERRY_REDSHIFT_TEST_IAM_ROLE")
BUCKET = os.environ.get("FERRY_REDSHIFT_TEST_BUCKET")
if not (URL and ROLE and BUCKET):
    pytest.skip("live Redshift smoke test: set FERRY_REDSHIFT_TEST_URL, FERRY_REDSHIFT_TEST_IAM_ROLE and "
                "FERRY_REDSHIFT_TEST_BUCKET to run it (see tests/test_redshift_live.py)", allow_module_level=True)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    import mysql.connector
    import psycopg

    token = secrets.token_hex(3)
    db, pipeline, schema = f"ferry_live_{token}", f"live-{token}", f"Ferry_Smoke_{token}"
    url = urlsplit(URL)
    d = tmp_path_factory.mktemp("live")
    (d / "pipelines").mkdir()
    (d / "connections.yml").write_text(yaml.safe_dump({
        "sources": {"mysql": {"host": MYSQL["host"], "port": MYSQL["port"], "user": MYSQL["user"],
                              "password": MYSQL["password"]}},
        "targets": {"rs": {"type": "redshift", "host": url.hostname, "port": url.port or 5439,
                           "database": url.path.lstrip("/"), "user": url.username, "password": url.password or "",
                           "schema": "public", "iam_role": ROLE}},
        "s3": {"bucket": BUCKET, "prefix": "ferry-live", "region": os.environ.get("FERRY_REDSHIFT_TEST_REGION",
                                                                                 "us-east-1")}}))
    (d / "pipelines" / f"{pipeline}.yml").write_text(yaml.safe_dump({
        "source": "mysql", "target": "rs", "target_schema": schema,
        "tables": {f"{db}.every_type": {}, f'{db}."Order Lines %"': {},
                   f"{db}.countries": {"strategy": "full"}}}))
    admin = mysql.connector.connect(autocommit=True, **MYSQL)
    cur = admin.cursor()
    cur.execute(f"CREATE DATABASE `{db}`")
    cur.execute(f"USE `{db}`")
    cur.execute(DDL)
    cur.executemany(INSERT, ROWS)
    cur.execute("CREATE TABLE `Order Lines %` (id INT NOT NULL PRIMARY KEY, `two words` VARCHAR(10))")
    cur.execute("INSERT INTO `Order Lines %` VALUES (1, 'a b'), (2, '50 %')")
    cur.execute("CREATE TABLE countries (code CHAR(2) NOT NULL PRIMARY KEY, name VARCHAR(40))")
    cur.execute("INSERT INTO countries VALUES ('fr', 'France'), ('de', 'Deutschland')")
    env = dict(os.environ, FERRY_CONFIG=str(d), FERRY_REDIS_URL=REDIS_URL, CELERY_BROKER_URL=REDIS_URL,
               CELERY_RESULT_BACKEND=REDIS_URL, PYTHONPATH=str(REPO))
    worker = Worker(f"live{token}", env, d, concurrency=2)
    rs = psycopg.connect(URL, autocommit=True)
    try:
        yield {"db": db, "pipeline": pipeline, "schema": schema.lower(), "env": env, "rs": rs, "mysql": admin}
    finally:
        worker.stop()
        rs.execute(f'DROP SCHEMA IF EXISTS "{schema.lower()}" CASCADE')
        rs.close()
        cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
        admin.close()
        import boto3
        bucket = boto3.resource("s3").Bucket(BUCKET)
        bucket.objects.filter(Prefix=f"ferry-live/{pipeline}/").delete()


def _pipeline(live: dict, suffix: str, tables: dict) -> str:
    """A pipeline of its own on the live target (tables: schema.table -> settings)."""
    name = f"{live['pipeline']}-{suffix}"
    (Path(live["env"]["FERRY_CONFIG"]) / "pipelines" / f"{name}.yml").write_text(yaml.safe_dump({
        "source": "mysql", "target": "rs", "target_schema": live["schema"], "tables": tables}))
    return name


def _run(live: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ferry", *args], env=live["env"], cwd=REPO, capture_output=True,
                          text=True, timeout=1800)


def _sync(live: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ferry", "sync", "-p", live["pipeline"], "--wait"],
                          env=live["env"], cwd=REPO, capture_output=True, text=True, timeout=1800)


def test_every_type_a_percent_name_and_a_granted_full_reload(live: dict) -> None:
    from common.state.table import TableState
    import redis

    first = _sync(live)
    assert first.returncode == 0, first.stderr
    live["rs"].execute(f'GRANT SELECT ON "{live["schema"]}".countries TO PUBLIC')
    second = _sync(live)  # the full reload swaps a new table in: the grant must survive
    assert second.returncode == 0, second.stderr
    assert live["rs"].execute(f"SELECT has_table_privilege('public', '\"{live['schema']}\".countries', 'SELECT')"
                              ).fetchone()[0]
    r = redis.Redis.from_url(REDIS_URL)
    for table, target in (("every_type", "every_type"), ('"Order Lines %"', "order lines %"),
                          ("countries", "countries")):
        key = f"{live['db']}.{table}"
        schema = TableState(r, live["pipeline"], key).schema()
        assert schema is not None
        compare.assert_same_rows(list(compare.source_rows(live["mysql"], key, schema)),
                                 list(compare.target_rows(live["rs"], live["schema"], target, schema,
                                                          json_text="JSON_SERIALIZE({})")), schema)


def test_verify_agrees_on_redshift(live: dict) -> None:
    """What no page says about `ferry verify`'s SQL: that Redshift's CAST(DECIMAL AS VARCHAR)
    keeps the scale's zeros, TO_CHAR's US gives six digits, TO_HEX of a VARBYTE is lowercase,
    and LOG/POWER/ROUND on DOUBLE PRECISION round as MySQL's do (floats, 11 digits)."""
    done = _sync(live)
    assert done.returncode == 0, done.stderr
    for table in ("every_type", '"Order Lines %"', "countries"):
        out = subprocess.run([sys.executable, "-m", "ferry", "verify", "-p", live["pipeline"], "-t",
                              f"{live['db']}.{table}"], env=live["env"], cwd=REPO, capture_output=True,
                             text=True, timeout=600)
        assert out.returncode == 0, out.stdout + out.stderr


def test_reconcile_on_redshift(live: dict) -> None:
    """What no page says about a reconcile's statements: that the deletes staging table takes
    the COPY of a key-only Parquet part, that DELETE ... USING and the soft delete's UPDATE ...
    FROM report through the driver the rows they took (ferry counts them), and that the range
    checksums agree on an exact copy (test_reconcile.py proves the rest on PostgreSQL)."""
    import json

    done = _sync(live)
    assert done.returncode == 0, done.stderr
    live["mysql"].cursor().execute(f"DELETE FROM `{live['db']}`.`Order Lines %` WHERE id = 2")
    out = subprocess.run([sys.executable, "-m", "ferry", "reconcile", "-p", live["pipeline"], "-t",
                          f'{live["db"]}."Order Lines %"', "--wait", "--json-output", "-"], env=live["env"],
                         cwd=REPO, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(out.stdout)
    assert report["rows_deleted"] == 1 and report["rows_repaired"] == 0, report
    ids = [r[0] for r in live["rs"].execute(f'SELECT id FROM "{live["schema"]}"."order lines %" ORDER BY id')]
    assert ids == [1]


def test_a_refused_range_waits_on_redshift(live: dict) -> None:
    """What no page says: that Redshift's refusal of a NULL into a NOT NULL column (during the
    merge's INSERT) carries a SQLSTATE of class 23 or a text common/errors.refusal knows, so the
    refused chunk waits and the others load (test_refused.py proves the rest on PostgreSQL)."""
    import boto3

    config = Path(live["env"]["FERRY_CONFIG"])
    pipeline = f"{live['pipeline']}-refused"
    (config / "pipelines" / f"{pipeline}.yml").write_text(yaml.safe_dump({
        "source": "mysql", "target": "rs", "target_schema": live["schema"],
        "tables": {f"{live['db']}.notes": {"chunk_rows": 1}}}))
    cur = live["mysql"].cursor()
    cur.execute(f"CREATE TABLE `{live['db']}`.notes (id INT NOT NULL PRIMARY KEY, note VARCHAR(20))")
    cur.execute(f"INSERT INTO `{live['db']}`.notes VALUES (1, 'a'), (2, NULL), (3, 'c')")
    live["rs"].execute(f'CREATE SCHEMA IF NOT EXISTS "{live["schema"]}"')
    live["rs"].execute(f'CREATE TABLE "{live["schema"]}".notes (id INTEGER NOT NULL, note VARCHAR(80) NOT NULL, '
                       f'PRIMARY KEY (id))')
    try:
        out = subprocess.run([sys.executable, "-m", "ferry", "sync", "-p", pipeline, "--wait"], env=live["env"],
                             cwd=REPO, capture_output=True, text=True, timeout=1800)
        assert out.returncode == 1 and "the warehouse refused chunk 1 of run" in out.stderr, out.stderr
        ids = {r[0] for r in live["rs"].execute(f'SELECT id FROM "{live["schema"]}".notes')}
        assert ids == {1, 3}
    finally:
        boto3.resource("s3").Bucket(BUCKET).objects.filter(Prefix=f"ferry-live/{pipeline}/").delete()


def test_widening_what_alter_refuses_on_redshift(live: dict) -> None:
    """What no page says about widen.plan's statements (tests/test_widen.py proves the plan, and
    carries it out on PostgreSQL): that svv_redshift_columns reports a column's default,
    encoding and keys to the loader; that ADD COLUMN + UPDATE, and ADD / UPDATE / DROP /
    RENAME COLUMN, run inside one transaction block; that DROP CONSTRAINT, ALTER COLUMN ...
    ENCODE ZSTD and ADD CONSTRAINT ... PRIMARY KEY run on a table ferry loads. The target is
    made as ferry made them before (a DEFAULT and the key declared) with a BYTEDICT column."""
    import boto3
    from common.state.table import TableState
    import redis

    pipeline = _pipeline(live, "widen", {f"{live['db']}.widen": {}})
    cur = live["mysql"].cursor()
    cur.execute(f"CREATE TABLE `{live['db']}`.widen (code VARCHAR(8) NOT NULL PRIMARY KEY,"
                f" status VARCHAR(8) DEFAULT 'new', note VARCHAR(8))")
    cur.execute(f"INSERT INTO `{live['db']}`.widen VALUES ('a', 'old', 'x'), ('b''q', DEFAULT, NULL)")
    live["rs"].execute(f'CREATE SCHEMA IF NOT EXISTS "{live["schema"]}"')
    live["rs"].execute(f'CREATE TABLE "{live["schema"]}".widen (code VARCHAR(32) NOT NULL,'
                       f" status VARCHAR(32) DEFAULT 'new', note VARCHAR(32) ENCODE BYTEDICT, PRIMARY KEY (code))")
    try:
        first = _run(live, "sync", "-p", pipeline, "--wait")
        assert first.returncode == 0, first.stderr
        cur.execute(f"ALTER TABLE `{live['db']}`.widen MODIFY code VARCHAR(30) NOT NULL, MODIFY status VARCHAR(30)"
                    f" DEFAULT 'new', MODIFY note VARCHAR(30), ADD COLUMN flag VARCHAR(4) DEFAULT 'y'")
        cur.execute(f"INSERT INTO `{live['db']}`.widen VALUES ('{'c' * 30}', '{'s' * 30}', '{'n' * 30}', 'z')")
        second = _run(live, "sync", "-p", pipeline, "--wait")
        assert second.returncode == 0, second.stderr
        facts = {r[0]: r[1:] for r in live["rs"].execute(
            "SELECT column_name, data_type, character_maximum_length, column_default, encoding"
            " FROM svv_redshift_columns WHERE database_name = current_database() AND schema_name = %s"
            " AND table_name = 'widen'", [live["schema"]])}
        assert all(facts[c][1] == 120 for c in ("code", "status", "note")), facts
        assert facts["status"][2] is None and facts["note"][3].lower() == "zstd", facts
        key = f"{live['db']}.widen"
        schema = TableState(redis.Redis.from_url(REDIS_URL), pipeline, key).schema()
        assert schema is not None
        compare.assert_same_rows(list(compare.source_rows(live["mysql"], key, schema)),
                                 list(compare.target_rows(live["rs"], live["schema"], "widen", schema)), schema)
    finally:
        boto3.resource("s3").Bucket(BUCKET).objects.filter(Prefix=f"ferry-live/{pipeline}/").delete()


def test_geometry_lands_as_geometry_on_redshift(live: dict) -> None:
    """What no page says: that COPY fills a VARBYTE staging column from the parts' Parquet
    BYTE_ARRAY EWKB, that ST_GeomFromEWKB takes it as VARBYTE, and that ST_AsEWKB gives the
    same bytes back (so `ferry verify` agrees on geometry)."""
    import boto3

    from tests.test_geometry import DDL, ROW_1

    pipeline = _pipeline(live, "geo", {f"{live['db']}.places": {}})
    cur = live["mysql"].cursor()
    cur.execute(f"USE `{live['db']}`")
    cur.execute(DDL)
    cur.execute(ROW_1)
    try:
        done = _run(live, "sync", "-p", pipeline, "--wait")
        assert done.returncode == 0, done.stderr
        cur.execute("SELECT ST_SRID(p), ST_AsText(p), ST_SRID(gc), ST_AsText(gc) FROM places WHERE id = 1")
        srid_p, text_p, srid_gc, text_gc = cur.fetchone()
        got = live["rs"].execute(f'SELECT ST_SRID(p), ST_AsText(p), ST_SRID(gc), ST_AsText(gc) FROM '
                                 f'"{live["schema"]}".places WHERE id = 1').fetchone()
        assert got[0] == srid_p and got[2] == srid_gc and got[1].replace(" ", "") == text_p.replace(" ", "")
        out = _run(live, "verify", "-p", pipeline, "-t", f"{live['db']}.places")
        assert out.returncode == 0, out.stdout + out.stderr
    finally:
        boto3.resource("s3").Bucket(BUCKET).objects.filter(Prefix=f"ferry-live/{pipeline}/").delete()


def test_an_interleaved_table_is_redesigned_sort_key_first_on_redshift(live: dict) -> None:
    """What sql.redesign relies on and only a cluster shows: that ALTER COMPOUND SORTKEY
    turns an interleaved sort key compound ("You can alter an interleaved sort key to a
    compound sort key or no sort key") and that ALTER DISTSTYLE KEY DISTKEY then works
    (not "supported for tables with interleaved sort keys"), both on a table ferry loads."""
    import boto3

    key = f"{live['db']}.redesign"
    cur = live["mysql"].cursor()
    cur.execute(f"CREATE TABLE `{live['db']}`.redesign (id INT NOT NULL PRIMARY KEY, shop INT, at DATETIME)")
    cur.execute(f"INSERT INTO `{live['db']}`.redesign VALUES (1, 10, '2024-01-01'), (2, 20, '2024-01-02')")
    pipeline = _pipeline(live, "redesign", {key: {}})
    path = Path(live["env"]["FERRY_CONFIG"]) / "pipelines" / f"{pipeline}.yml"
    doc = yaml.safe_load(path.read_text())
    try:
        doc["redshift_keys"] = {key: {"distkey": "id", "sortkey": {"type": "interleaved", "columns": ["shop", "at"]}}}
        path.write_text(yaml.safe_dump(doc))
        assert _run(live, "sync", "-p", pipeline, "--wait").returncode == 0
        doc["redshift_keys"] = {key: {"distkey": "shop", "sortkey": ["at"]}}
        path.write_text(yaml.safe_dump(doc))
        cur.execute(f"INSERT INTO `{live['db']}`.redesign VALUES (3, 30, '2024-01-03')")
        done = _run(live, "sync", "-p", pipeline, "--wait")
        assert done.returncode == 0, done.stderr
        info = live["rs"].execute('SELECT diststyle, sortkey1, sortkey_num FROM svv_table_info WHERE "schema" = %s'
                                  ' AND "table" = \'redesign\'', [live["schema"]]).fetchone()
        assert info[0].startswith("KEY(shop)") and info[1] == "at", info
    finally:
        boto3.resource("s3").Bucket(BUCKET).objects.filter(Prefix=f"ferry-live/{pipeline}/").delete()
