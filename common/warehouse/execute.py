"""Running statements on a warehouse connection, and what every part of a warehouse client
shares: its engine, the schema it loads into, the S3 store and the dialect."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Sequence

from sqlalchemy.engine import Connection, Engine

from common.model.records import PendingPart
from common.model.types import TableSchema
from common.store.s3 import Store
from common.warehouse import sql
from common.warehouse.sql import Dialect

if TYPE_CHECKING:
    from common.warehouse.request import LoadRequest


def run_statement(conn: Connection, statement: str) -> None:
    """Run a statement without parameters on the driver's own cursor. Through SQLAlchemy the
    driver would get an empty parameter list and read any `%` in a name or a URL as a
    placeholder; sent with no parameters at all, the text is taken as it is."""
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.execute(statement)
    finally:
        cursor.close()


def first_row(conn: Connection, statement: str) -> tuple[Any, ...] | None:
    """The first row of a query without parameters (run_statement's way: `%` stays text)."""
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.execute(statement)
        row = cursor.fetchone()
        return tuple(row) if row is not None else None
    finally:
        cursor.close()


def time_limit_in(exc: BaseException) -> str | None:
    """The task time limit (Celery's soft limit) behind an error, if one interrupted the load:
    the error that surfaces is often the rollback's ("another command is already in progress")."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return None
        if type(seen).__name__ in ("SoftTimeLimitExceeded", "TimeLimitExceeded"):
            return "time limit (" + type(seen).__name__ + ")"
        seen = seen.__cause__ or seen.__context__
    return None


class WarehouseBase(ABC):
    """A warehouse client; subclasses only say how parts reach a table (`stage`)."""

    dialect: Dialect

    def __init__(self, engine: Engine, schema: str, store: Store) -> None:
        self.engine = engine
        self.schema = schema
        self.store = store

    @abstractmethod
    def stage(self, conn: Connection, into: str, schema: TableSchema, request: "LoadRequest",
              parts: Sequence[PendingPart]) -> None:
        """Copy the parts' rows into the table `into` (a quoted SQL reference)."""

    def _exists(self, conn: Connection, query: tuple[str, list[str]]) -> bool:
        return conn.exec_driver_sql(query[0], tuple(query[1])).first() is not None

    def table_exists(self, conn: Connection, table: str) -> bool:
        return self._exists(conn, sql.table_exists(self.schema, table))
