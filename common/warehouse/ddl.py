"""The target's tables: the ledger and the target created, an existing target evolved to the
mapping (columns added or widened) or redesigned (redshift_keys), and the privileges a load
needs (`ferry check`). Each DDL statement commits on its own, before the load's transaction."""
from __future__ import annotations

import dataclasses
import logging
from typing import Sequence

from sqlalchemy.engine import Connection

from common.config.design import TableDesign
from common.errors import SchemaError
from common.model import schema_change
from common.model.types import ColumnSpec, TableSchema
from common.warehouse import sql, widen
from common.warehouse.execute import WarehouseBase, run_statement
from common.warehouse.reload import missing_grant_visibility

log = logging.getLogger(__name__)


class TargetTables(WarehouseBase):
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
        stmts, refused = sql.redesign(self.schema, target, old, new, schema.columns, self.dialect.caps)
        for stmt in stmts:
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                run_statement(conn, stmt)
            log.warning("target %s.%s redesigned: %s", self.schema, target, stmt)
        for change in refused:
            log.warning("target %s.%s: not applied: %s", self.schema, target, change)
        return stmts, refused

    def evolve(self, target: str, schema: TableSchema) -> list[str]:
        """Bring an existing target up to the mapping: add the columns it lacks, widen the
        ones that grew; keep the ones the source dropped or a DBA added. Each change commits
        on its own, before the load's transaction (Redshift runs ALTER COLUMN TYPE only
        outside a transaction block; a column added with its rows' default, or rebuilt, is
        one transaction), and is derived from the target as it is, so a failure midway
        leaves a target the next load still fits and finishes adapting. How a column is
        widened follows the warehouse's rules (widen.plan). Returns the statements executed."""
        query, params = sql.target_column_types(self.schema, target)
        with self.engine.connect() as conn:
            existing = {r[0]: sql.generic_type(r[1]) for r in conn.exec_driver_sql(query, tuple(params))}
        if not existing:
            return []
        todo: list[widen.Step] = []
        grown: list[ColumnSpec] = []
        for col in schema.columns:
            if col.name not in existing:
                todo.append(widen.Step(tuple(sql.add_column(self.schema, target, col, self.dialect)), True))
                continue
            current = existing[col.name]
            if current is None or current == col.target:
                continue
            verdict = schema_change.widening(current, col.target, self.dialect.caps)
            if verdict:
                grown.append(col)
            elif verdict is False or schema_change.widening(col.target, current, self.dialect.caps) is None:
                raise SchemaError(f"target {self.schema}.{target}, column {col.name}: is {current}, the source "
                                  f"now needs {col.target}; this warehouse cannot change it in place")
        if grown:
            facts, interleaved = self.column_facts(target)
            gone: set[str] = set()  # constraints an earlier column's rebuild dropped for good
            for col in grown:
                found = facts.get(col.name, widen.ColumnFacts(col.name))
                found = dataclasses.replace(found, constraints=tuple(c for c in found.constraints if c.name not in gone))
                steps, refused = widen.plan(self.schema, target, col, found, interleaved, self.dialect)
                if refused:
                    raise SchemaError(refused)
                gone.update(name for step in steps for name in step.drops_for_good)
                todo += steps
        done: list[str] = []
        for step in todo:
            if step.transaction:
                with self.engine.begin() as conn:
                    for stmt in step.statements:
                        run_statement(conn, stmt)
            else:
                for stmt in step.statements:
                    with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                        run_statement(conn, stmt)
            for stmt in step.statements:
                log.warning("target %s.%s changed: %s", self.schema, target, stmt)
            done += step.statements
        return done

    def column_facts(self, target: str) -> tuple[dict[str, widen.ColumnFacts], bool]:
        """Each target column's default, encoding, dist/sort key role and key constraints,
        from the catalog; and whether the table has an interleaved sort key."""
        keys: dict[tuple[str, str], list[str]] = {}
        with self.engine.connect() as conn:
            rows = conn.exec_driver_sql(self.dialect.column_facts_query, (self.schema, target)).all()
            query, params = sql.key_constraints(self.schema, target)
            for name, kind, column in conn.exec_driver_sql(query, tuple(params)):
                keys.setdefault((name, kind), []).append(column)
        constraints = [widen.Constraint(name, kind, tuple(cols)) for (name, kind), cols in keys.items()]
        facts = {r[0]: widen.ColumnFacts(r[0], bool(r[1]), r[2], bool(r[3]),
                                         tuple(c for c in constraints if r[0] in c.columns))
                 for r in rows}
        return facts, any((r[4] or 0) < 0 for r in rows)

    def add_soft_delete_column(self, target: str) -> str:
        """Add _ferry_deleted_at to the target if it lacks it (`reconcile: {deletes: soft}`),
        committed on its own before the load's transaction, as evolve's columns are. Returns
        the statement run ('' if the column was there)."""
        query, params = sql.target_column_types(self.schema, target)
        with self.engine.connect() as conn:
            existing = {r[0] for r in conn.exec_driver_sql(query, tuple(params))}
        if not existing or sql.SOFT_DELETED in existing:
            return ""
        stmt = sql.add_soft_delete_column(self.schema, target)
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            run_statement(conn, stmt)
        log.warning("target %s.%s changed: %s", self.schema, target, stmt)
        return stmt

    def swap_problems(self, swapped_tables: Sequence[str]) -> list[str]:
        """A full reload's swap of an existing target carries its grants over: a loader that
        cannot see them all would drop the others, so the swap refuses (`ferry check` says so
        first)."""
        with self.engine.connect() as conn:
            existing = [t for t in swapped_tables if self._exists(conn, sql.table_exists(self.schema, t))]
            if not existing or conn.exec_driver_sql(self.dialect.sees_all_grants_query).scalar():
                return []
        return [missing_grant_visibility(self.schema, t) for t in existing]

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
