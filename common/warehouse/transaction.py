"""The load transaction: every part not yet in the ledger staged (COPY) and merged into the
target by key (oldest run first), copied straight into a target created by this load, or
swapped in whole (full reloads, reload.py); the ledger rows in the same transaction."""
from __future__ import annotations

import itertools
import logging
from typing import Sequence

from sqlalchemy.engine import Connection

from common import errors
from common.errors import RefusedError
from common.model import naming
from common.model.records import PendingPart
from common.warehouse import reload, sql
from common.warehouse.ddl import TargetTables
from common.warehouse.execute import first_row, run_statement, time_limit_in
from common.warehouse.ledger import Ledger
from common.warehouse.request import LoadRequest, LoadResult

log = logging.getLogger(__name__)


def _rowcount(conn: Connection, statement: str) -> int:
    """Run a statement without parameters (run_statement's way) and return its row count."""
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.execute(statement)
        return max(int(cursor.rowcount or 0), 0)
    finally:
        cursor.close()


class LoadTransaction(TargetTables, Ledger):
    def load(self, request: LoadRequest) -> LoadResult:
        """Stage and merge (or swap in) every part not yet in the ledger, and record them,
        in one transaction."""
        ledger = naming.ledger_table_name(request.target_table)
        self.ensure_ledger(ledger)
        runs = sorted({p.run_id for p in request.parts})
        with self.engine.connect() as conn:
            try:
                todo, skipped, deleted = self._load_in(conn, request, ledger, runs)
            except BaseException as exc:
                # A load cut short (a time limit inside COPY, a lost connection) can leave the
                # connection mid-command: never hand it back to the pool for the retry.
                try:
                    conn.invalidate()
                except Exception:  # noqa: BLE001 - it is being thrown away anyway
                    pass
                cut = time_limit_in(exc)
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
        return LoadResult(loaded=tuple(todo), skipped=skipped, deleted=deleted)

    def _load_in(self, conn: Connection, request: LoadRequest, ledger: str, runs: list[str],
                 ) -> tuple[list[PendingPart], tuple[PendingPart, ...], dict[str, int]]:
        deleted: dict[str, int] = {}
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
                rows = [p for p in todo if not naming.is_deletes_key(p.key)]
                created = self.ensure_table(conn, request.target_table, request.schema, request.design)
                if rows and created and self._copies_straight(request, rows):
                    self._copy_straight(conn, request, rows)
                elif rows:
                    self._merge(conn, request, rows)
                deleted = self._delete(conn, request, [p for p in todo if naming.is_deletes_key(p.key)])
            if todo:
                self._write_ledger(conn, ledger, request, todo)
        return todo, skipped, deleted

    def _delete(self, conn: Connection, request: LoadRequest, parts: Sequence[PendingPart]) -> dict[str, int]:
        """Apply deletes parts (a reconcile's keys only in the target), after the merge, in its
        transaction: staged, less the keys the source has again (request.kept_keys), then
        deleted from the target, or marked deleted (soft). Returns the rows each run's took."""
        deleted: dict[str, int] = {}
        if not parts:
            return deleted
        key = request.schema.key_targets
        keys_schema = request.schema.key_only()
        for run_id, group in itertools.groupby(parts, key=lambda p: p.run_id):
            group = list(group)
            staging = naming.staging_table_name(request.target_table, f"{request.load_id}d")
            run_statement(conn, sql.create_staging(staging, keys_schema.columns, self.dialect))
            self.stage(conn, naming.quote_ident(staging), keys_schema, request, group)
            kept = [k for p in group for k in request.kept_keys.get(p.key, ())]
            for start in range(0, len(kept), 500):
                some = kept[start:start + 500]
                conn.exec_driver_sql(sql.unstage_keys(staging, key, len(some)), tuple(v for k in some for v in k))
            stmt = (sql.soft_delete_keys(self.schema, request.target_table, staging, key, request.deleted_at)
                    if request.soft_deletes else sql.delete_keys(self.schema, request.target_table, staging, key))
            deleted[run_id] = deleted.get(run_id, 0) + _rowcount(conn, stmt)
            run_statement(conn, sql.drop_staging(staging))
        return deleted

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
            fill = sql.fill_defaults(request.schema.columns, schema.columns, self.dialect)
            if not request.append and request.version_column is None:
                self._refuse_duplicate_keys(conn, request, staging, run_id)
            for stmt in (sql.append(self.schema, request.target_table, staging, columns, exprs, fill)
                         if request.append else
                         sql.merge(self.schema, request.target_table, staging, columns,
                                   request.schema.key_targets, request.version_column, exprs, fill)):
                run_statement(conn, stmt)
            run_statement(conn, sql.drop_staging(staging))

    @staticmethod
    def _copies_straight(request: LoadRequest, parts: Sequence[PendingPart]) -> bool:
        """A first load (the target created in this transaction, so empty, its columns in the
        mapping's order) needs no staging and no merge: unless versions of a row must be
        chosen (a timestamp cursor: a row updated while the run reads can be read twice),
        JSON or geometry must be parsed on the way in, or the parts come from more than one run (a later
        run may hold newer versions of an earlier one's rows) or another mapping."""
        return (request.version_column is None and all(c.kind not in sql.PARSED_KINDS for c in request.schema.columns)
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
