"""The warehouse behind one interface: load committed parts into a target in one transaction."""
from __future__ import annotations

import itertools
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Sequence

from sqlalchemy.engine import Connection, Engine

from common import errors
from common.model import naming, schema_change
from common.config.design import TableDesign
from common.errors import RefusedError, SchemaError
from common.store.s3 import Store
from common.model.types import TableSchema
from common.warehouse import reload, sql
from common.warehouse.sql import Dialect
from common.model.records import PendingPart

log = logging.getLogger(__name__)


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


def _time_limit_in(exc: BaseException) -> str | None:
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


@dataclass(frozen=True)
class LoadRequest:
    """What one load merges: parts of a table into its target."""

    pipeline: str
    table: str
    target_table: str
    schema: TableSchema
    parts: Sequence[PendingPart]
    load_id: str
    table_prefix: str
    version_column: str | None = None
    """Target column that orders versions of a row (the timestamp cursor), if any."""
    replace: bool = False
    """Full reload: build a new table from the parts and swap it in for the target."""
    append: bool = False
    """`load: append`: insert the staged rows, replace nothing."""
    design: TableDesign | None = None
    """DISTSTYLE/DISTKEY/SORTKEY for a table ferry creates (Redshift)."""
    full_reload: str = "swap"
    """How a full reload replaces the target: swap (new table renamed over it) or delete_insert."""
    run_schemas: dict[str, TableSchema] = field(default_factory=dict)
    """The mapping each run's parts were written with (schemas change between runs);
    a run not listed was written with `schema`."""

    def schema_of(self, run_id: str) -> TableSchema:
        return self.run_schemas.get(run_id, self.schema)


@dataclass(frozen=True)
class LoadResult:
    """Parts copied in this load, and parts skipped because the ledger already had them."""

    loaded: tuple[PendingPart, ...]
    skipped: tuple[PendingPart, ...]

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.loaded)


class Warehouse(ABC):
    """Shared load flow; subclasses only say how parts reach the staging table."""

    dialect: Dialect

    def __init__(self, engine: Engine, schema: str, store: Store) -> None:
        self.engine = engine
        self.schema = schema
        self.store = store

    @abstractmethod
    def stage(self, conn: Connection, into: str, schema: TableSchema, request: LoadRequest,
              parts: Sequence[PendingPart]) -> None:
        """Copy the parts' rows into the table `into` (a quoted SQL reference)."""

    def _exists(self, conn: Connection, query: tuple[str, list[str]]) -> bool:
        return conn.exec_driver_sql(query[0], tuple(query[1])).first() is not None

    def ensure_ledger(self, ledger: str) -> None:
        """Create the schema and the table's ledger if missing, in their own transaction.

        Existence is checked first: CREATE ... IF NOT EXISTS still needs the CREATE
        privilege, which a loader user may lack where both already exist."""
        for attempt in (1, 2):
            try:
                with self.engine.begin() as conn:
                    if not self._exists(conn, sql.schema_exists(self.schema)):
                        run_statement(conn, sql.create_schema(self.schema))
                    if not self._exists(conn, sql.table_exists(self.schema, ledger)):
                        run_statement(conn, sql.create_ledger(self.schema, ledger))
                return
            except Exception:  # noqa: BLE001 - loads of two tables raced to create the schema
                if attempt == 2:
                    raise

    def ensure_table(self, conn: Connection, target: str, schema: TableSchema,
                     design: TableDesign | None = None) -> bool:
        """Create the target from the mapping if it does not exist (evolve() adapted an
        existing one before the load's transaction); True if it was created here."""
        if self._exists(conn, sql.table_exists(self.schema, target)):
            return False
        run_statement(conn, sql.create_table(self.schema, target, schema.columns,
                                             schema.key_targets, self.dialect, design))
        return True

    def redesign(self, target: str, old: TableDesign, new: TableDesign,
                 schema: TableSchema) -> tuple[list[str], list[str]]:
        """Apply a changed redshift_keys setting to an existing target where the warehouse
        can (ALTER DISTSTYLE/DISTKEY/SORTKEY, each committed on its own); returns the
        statements run and the changes it could not make."""
        if not self.dialect.caps.table_design:
            return [], []
        with self.engine.connect() as conn:
            if not self._exists(conn, sql.table_exists(self.schema, target)):
                return [], []
        stmts, refused = sql.redesign(self.schema, target, old, new, schema.columns)
        for stmt in stmts:
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                run_statement(conn, stmt)
            log.warning("target %s.%s redesigned: %s", self.schema, target, stmt)
        for change in refused:
            log.warning("target %s.%s: not applied: %s", self.schema, target, change)
        return stmts, refused

    def evolve(self, target: str, schema: TableSchema) -> list[str]:
        """Bring an existing target up to the mapping: add the columns it lacks, widen the
        ones that grew; keep the ones the source dropped or a DBA added. Each statement
        commits on its own, before the load's transaction (Redshift runs ALTER COLUMN TYPE
        only outside a transaction block), and is derived from the target as it is, so a
        failure midway leaves a target the next load still fits and finishes adapting.
        Returns the statements executed."""
        query, params = sql.target_column_types(self.schema, target)
        with self.engine.connect() as conn:
            existing = {r[0]: sql.generic_type(r[1]) for r in conn.exec_driver_sql(query, tuple(params))}
        if not existing:
            return []
        todo: list[str] = []
        for col in schema.columns:
            if col.name not in existing:
                todo.append(sql.add_column(self.schema, target, col, self.dialect))
                continue
            current = existing[col.name]
            if current is None or current == col.target:
                continue
            verdict = schema_change.widening(current, col.target, self.dialect.caps)
            if verdict:
                todo.append(sql.widen_column(self.schema, target, col, self.dialect))
            elif verdict is False or schema_change.widening(col.target, current, self.dialect.caps) is None:
                raise SchemaError(f"target {self.schema}.{target}, column {col.name}: is {current}, the source "
                                  f"now needs {col.target}; this warehouse cannot change it in place")
        for stmt in todo:
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                run_statement(conn, stmt)
            log.warning("target %s.%s changed: %s", self.schema, target, stmt)
        return todo

    def access_problems(self, target_tables: Sequence[str]) -> list[str]:
        """What would stop a load: a schema the user can neither use nor create, target
        tables it cannot read, insert into or delete from (`ferry check`)."""
        problems: list[str] = []
        with self.engine.connect() as conn:
            def ask(query: tuple[str, list[str]]) -> bool:
                return bool(conn.exec_driver_sql(query[0], tuple(query[1])).scalar())

            if not self._exists(conn, sql.schema_exists(self.schema)):
                if not ask(sql.can_create_schema()):
                    problems.append(f"schema {self.schema} does not exist and the user may not create it")
                return problems
            if not ask(sql.schema_privilege(self.schema, "USAGE")) or \
                    not ask(sql.schema_privilege(self.schema, "CREATE")):
                problems.append(f"schema {self.schema}: the user needs USAGE and CREATE on it")
            for table in target_tables:
                if not self._exists(conn, sql.table_exists(self.schema, table)):
                    continue
                for privilege in ("SELECT", "INSERT", "DELETE"):
                    if not ask(sql.table_privilege(self.schema, table, privilege)):
                        problems.append(f"target {self.schema}.{table}: the user lacks {privilege}")
        return problems

    def load(self, request: LoadRequest) -> LoadResult:
        """Stage and merge (or swap in) every part not yet in the ledger, and record them,
        in one transaction."""
        ledger = naming.ledger_table_name(request.target_table)
        self.ensure_ledger(ledger)
        runs = sorted({p.run_id for p in request.parts})
        with self.engine.connect() as conn:
            try:
                todo, skipped = self._load_in(conn, request, ledger, runs)
            except BaseException as exc:
                # A load cut short (a time limit inside COPY, a lost connection) can leave the
                # connection mid-command: never hand it back to the pool for the retry.
                try:
                    conn.invalidate()
                except Exception:  # noqa: BLE001 - it is being thrown away anyway
                    pass
                cut = _time_limit_in(exc)
                if cut is not None:
                    raise errors.TransientError(
                        f"the load of {request.table} was interrupted by its {cut}; its connection was "
                        f"closed, the retry opens a fresh one") from exc
                refused = errors.refusal(exc) if isinstance(exc, Exception) else None
                if refused is not None and refused is not exc:
                    raise refused from exc
                raise
        log.info("loaded %d parts (%d rows) of %s into %s.%s; %d already loaded",
                 len(todo), sum(p.rows for p in todo), request.table, self.schema,
                 request.target_table, len(skipped))
        return LoadResult(loaded=tuple(todo), skipped=skipped)

    def _load_in(self, conn: Connection, request: LoadRequest, ledger: str,
                 runs: list[str]) -> tuple[list[PendingPart], tuple[PendingPart, ...]]:
        with conn.begin():
            done: set[str] = set()
            if runs:
                rows = conn.exec_driver_sql(sql.ledger_loaded(self.schema, ledger, runs),
                                            (request.pipeline, request.table, *runs))
                done = {r[0] for r in rows}
            todo = [p for p in request.parts if p.key not in done]
            skipped = tuple(p for p in request.parts if p.key in done)
            if request.replace:
                if todo or not request.parts:
                    self._replace(conn, request, todo)
            elif todo:
                created = self.ensure_table(conn, request.target_table, request.schema, request.design)
                if created and self._copies_straight(request, todo):
                    self._copy_straight(conn, request, todo)
                else:
                    self._merge(conn, request, todo)
            if todo:
                self._write_ledger(conn, ledger, request, todo)
        return todo, skipped

    def _merge(self, conn: Connection, request: LoadRequest, parts: Sequence[PendingPart]) -> None:
        # Oldest run first, so a newer version of a row replaces an older one. Each run's
        # parts are staged with the columns they were written with.
        staging = naming.staging_table_name(request.target_table, request.load_id)
        for run_id, group in itertools.groupby(parts, key=lambda p: p.run_id):
            schema = request.schema_of(run_id)
            run_statement(conn, sql.create_staging(staging, schema.columns, self.dialect))
            self.stage(conn, naming.quote_ident(staging), schema, request, list(group))
            columns = [c.name for c in schema.columns]
            exprs = sql.insert_exprs(schema.columns, self.dialect)
            if not request.append and request.version_column is None:
                self._refuse_duplicate_keys(conn, request, staging, run_id)
            for stmt in (sql.append(self.schema, request.target_table, staging, columns, exprs) if request.append else
                         sql.merge(self.schema, request.target_table, staging, columns,
                                   request.schema.key_targets, request.version_column, exprs)):
                run_statement(conn, stmt)
            run_statement(conn, sql.drop_staging(staging))

    @staticmethod
    def _copies_straight(request: LoadRequest, parts: Sequence[PendingPart]) -> bool:
        """A first load (the target created in this transaction, so empty, its columns in the
        mapping's order) needs no staging and no merge: unless versions of a row must be
        chosen (a timestamp cursor: a row updated while the run reads can be read twice),
        JSON must be parsed on the way in, or the parts come from more than one run (a later
        run may hold newer versions of an earlier one's rows) or another mapping."""
        return (request.version_column is None and all(c.kind != "json" for c in request.schema.columns)
                and len({p.run_id for p in parts}) == 1
                and all(request.schema_of(p.run_id) == request.schema for p in parts))

    def _copy_straight(self, conn: Connection, request: LoadRequest, parts: Sequence[PendingPart]) -> None:
        target = sql.table_ref(self.schema, request.target_table)
        if self.dialect.enforces_keys:
            # The stand-in enforces the primary key (Redshift does not): a key that is not
            # unique stops the COPY itself; back to the savepoint, and the staged merge names it.
            nested = conn.begin_nested()
            try:
                self.stage(conn, target, request.schema, request, parts)
                nested.commit()
            except Exception as exc:
                nested.rollback()
                if getattr(getattr(exc, "orig", exc), "sqlstate", "") != "23505":
                    raise
                self._merge(conn, request, parts)
                return
        else:
            self.stage(conn, target, request.schema, request, parts)
        if not request.append:
            self._refuse_duplicate_keys(conn, request, target, parts[0].run_id, quoted=True)
        log.info("first load of %s: %d parts copied straight into %s (no staging, no merge)",
                 request.table, len(parts), target)

    def _refuse_duplicate_keys(self, conn: Connection, request: LoadRequest, staging: str, run_id: str,
                               quoted: bool = False) -> None:
        """A key staged twice by one run means the key is not unique in the source (a
        primary_key override that is not): the merge would keep both rows, so say so."""
        key = request.schema.key_targets
        row = first_row(conn, sql.duplicate_key(staging, key, quoted))
        if row is not None:
            shown = ", ".join(f"{k}={v!r}" for k, v in zip(key, row[:-1]))
            raise RefusedError(f"table {request.table}: the key ({', '.join(request.schema.key)}) is not unique in "
                              f"the source: {shown} appears {row[-1]} times in run {run_id}; set primary_key to "
                              f"columns that are unique (NOT NULL, one row each)", column=", ".join(key))

    def _replace(self, conn: Connection, request: LoadRequest, parts: Sequence[PendingPart]) -> None:
        """Full reload, in the load's transaction (common/warehouse/reload.py)."""
        reload.MODES[request.full_reload](self, conn, request, parts)

    def table_exists(self, conn: Connection, table: str) -> bool:
        return self._exists(conn, sql.table_exists(self.schema, table))

    def ledger_parts(self, pipeline: str, table: str, target_table: str) -> dict[str, int]:
        """part key -> rows of every part the table's ledger records as loaded."""
        ledger = naming.ledger_table_name(target_table)
        with self.engine.connect() as conn:
            if not self._exists(conn, sql.table_exists(self.schema, ledger)):
                return {}
            rows = conn.exec_driver_sql(sql.ledger_all(self.schema, ledger), (pipeline, table))
            return {r[0]: int(r[1]) for r in rows}

    def _write_ledger(self, conn: Connection, ledger: str, request: LoadRequest,
                      parts: Sequence[PendingPart]) -> None:
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        for start in range(0, len(parts), 500):
            batch = parts[start:start + 500]
            params: list[Any] = []
            for p in batch:
                params += [request.pipeline, request.table, request.target_table, p.key, p.run_id,
                           p.chunk, p.rows, p.bytes, request.load_id, now]
            conn.exec_driver_sql(sql.ledger_insert(self.schema, ledger, len(batch)), tuple(params))
