"""The warehouse: one interface (base.Warehouse), thin Redshift and PostgreSQL implementations."""
from __future__ import annotations

from sqlalchemy import URL, create_engine
from sqlalchemy.engine import Engine

from common.config.connections import PostgresTarget, RedshiftTarget, S3Config
from common.errors import ConfigError
from common.store.s3 import Store
from common.warehouse.base import Warehouse
from common.warehouse.request import LoadRequest, LoadResult

__all__ = ["LoadRequest", "LoadResult", "Warehouse", "make_engine", "make_warehouse"]


def make_engine(target: PostgresTarget | RedshiftTarget) -> Engine:
    """A SQLAlchemy engine for the target (credentials go in the URL object, never in logs)."""
    driver = "postgresql+psycopg" if target.type == "postgres" else "redshift+psycopg2"
    url = URL.create(driver, username=target.user, password=target.password or None,
                     host=target.host, port=target.port, database=target.database)
    return create_engine(url, pool_pre_ping=True, pool_size=2, max_overflow=2)


def make_warehouse(target: PostgresTarget | RedshiftTarget, schema: str, engine: Engine,
                   store: Store, s3: S3Config) -> Warehouse:
    """The warehouse client for a target, loading into `schema`."""
    if target.type == "postgres":
        from common.warehouse.postgres import PostgresWarehouse
        return PostgresWarehouse(engine, schema, store)
    from common.warehouse.redshift import RedshiftWarehouse, copy_credentials
    try:
        creds = copy_credentials(target.iam_role, s3.access_key_id, s3.secret_access_key)
    except ValueError as exc:
        raise ConfigError(f"connections.yml: targets: {exc}") from None
    return RedshiftWarehouse(engine, schema, store, creds)

