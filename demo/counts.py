"""Print source and target row counts of the demo table, and whether every row matches."""
from __future__ import annotations

import sys

import common  # noqa: F401  (mysql.connector before pyarrow)
import mysql.connector
import psycopg
import redis

from common.config.files import load_pipeline
from common.config.settings import redis_url
from common.model.naming import quote_ident, quote_mysql, target_table_name
from common.state.table import TableState
from tests import compare


def main(pipeline: str = "demo", table: str = "shop.orders") -> int:
    cfg = load_pipeline(pipeline)
    settings = cfg.table(table)
    src, t = cfg.source, cfg.target
    my = mysql.connector.connect(host=src.host, port=src.port, user=src.user, password=src.password)
    my.cursor().execute("SET time_zone = '+00:00'")
    pg = psycopg.connect(host=t.host, port=t.port, dbname=t.database, user=t.user,
                         password=t.password or None, autocommit=True)
    target = target_table_name(settings.target_name)
    cur = my.cursor()
    cur.execute(f"SELECT COUNT(*) FROM {quote_mysql(settings.schema)}.{quote_mysql(settings.name)}")
    n_src = cur.fetchone()[0]
    n_dst = pg.execute(f"SELECT COUNT(*) FROM {quote_ident(cfg.target_schema)}.{quote_ident(target)}").fetchone()[0]
    print(f"source {table}: {n_src:,} rows")
    print(f"target {cfg.target_schema}.{target}: {n_dst:,} rows")
    schema = TableState(redis.Redis.from_url(redis_url()), pipeline, table).schema()
    same = compare.checksum(compare.source_rows(my, table, schema)) == \
        compare.checksum(compare.target_rows(pg, cfg.target_schema, target, schema))
    print("every row and column matches" if same else "ROWS DIFFER")
    return 0 if same and n_src == n_dst else 1


if __name__ == "__main__":
    sys.exit(main())
