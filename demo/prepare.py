"""Make the demo repeatable: create the S3 bucket, forget the demo pipeline's Redis state
and drop its target schema, so every `make demo` copies the table from the start."""
from __future__ import annotations

import common  # noqa: F401  (mysql.connector before pyarrow)
import psycopg
import redis

from common.model import naming
from common.config.files import load_pipeline
from common.config.settings import redis_url
from common.store.s3 import Store, make_client


def main(pipeline: str = "demo") -> None:
    cfg = load_pipeline(pipeline)
    store = Store(make_client(cfg.s3), cfg.s3.bucket)
    store.ensure_bucket(cfg.s3.region)
    client = redis.Redis.from_url(redis_url())
    for key in client.scan_iter(naming.pipeline_pattern(pipeline), count=1000):
        client.delete(key)
    t = cfg.target
    with psycopg.connect(host=t.host, port=t.port, dbname=t.database, user=t.user,
                         password=t.password or None, autocommit=True) as pg:
        pg.execute(f"DROP SCHEMA IF EXISTS {naming.quote_ident(cfg.target_schema)} CASCADE")
    print(f"demo: bucket {cfg.s3.bucket} ready, state of pipeline {pipeline} cleared")


if __name__ == "__main__":
    main()
