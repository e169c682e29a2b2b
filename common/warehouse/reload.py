"""Full reloads: the whole table, rebuilt every run and put in the target's place inside the
load's transaction. `swap` (the default) builds a new table and renames it over the target,
carrying over the owner, grants and comments (and the table design) first; `delete_insert`
empties the target and fills it again, keeping the table object itself."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from sqlalchemy.engine import Connection

from common.errors import TerminalError
from common.model import naming
from common.warehouse import sql
from common.warehouse.execute import run_statement

if TYPE_CHECKING:
    from common.warehouse.request import LoadRequest
    from common.warehouse.transaction import LoadTransaction as Warehouse
    from common.model.records import PendingPart


def _run(conn: Connection, statements: Sequence[str]) -> None:
    for stmt in statements:
        run_statement(conn, stmt)


def _carried_over(wh: "Warehouse", conn: Connection, target: str, new: str) -> tuple[list[str], list[str]]:
    """(GRANTs and comments of the table being replaced, for its successor before the swap;
    its owner, given after). Refused (TerminalError, before anything changed) when the
    loader cannot see every grant: a swap would silently drop the others."""
    if not conn.exec_driver_sql(wh.dialect.sees_all_grants_query).scalar():
        raise TerminalError(missing_grant_visibility(wh.schema, target))
    query, params = sql.table_owner_and_comments(wh.schema, target)
    rows = conn.exec_driver_sql(query, tuple(params)).all()
    owner, comment = (rows[0][0], rows[0][1]) if rows else (None, None)
    column_comments = [(r[2], r[1]) for r in rows[1:]]
    grants = [tuple(r) for r in conn.exec_driver_sql(wh.dialect.grants_query, (wh.schema, target)).all()]
    current_user = conn.exec_driver_sql("SELECT current_user").scalar()
    return (sql.carry_over(wh.schema, new, comment, column_comments, grants),
            sql.set_owner(wh.schema, target, owner, str(current_user)))


def missing_grant_visibility(schema: str, target: str) -> str:
    return (f"target {schema}.{target}: a full reload (full_reload: swap) replaces the table and carries its "
            f"grants over, but this loader sees only the grants it is party to (it is neither a superuser nor "
            f"granted ACCESS SYSTEM TABLE), so the others would be dropped; grant it ACCESS SYSTEM TABLE "
            f"(GRANT ACCESS SYSTEM TABLE TO ROLE r, and the role to the user), or set full_reload: delete_insert "
            f"(the table object, and its grants, stay)")


def swap_in(wh: "Warehouse", conn: Connection, request: "LoadRequest", parts: Sequence["PendingPart"]) -> None:
    """COPY into a new table beside the target, give it what users granted on the old one,
    rename it over the target, then give it the old one's owner. Readers keep the old rows
    until the commit; RENAME takes an exclusive lock, so readers arriving after it wait for
    the commit. Views on the target must be late-binding (WITH NO SCHEMA BINDING), or
    dropping the old table fails."""
    target = request.target_table
    new, old = naming.reload_table_names(target)
    exists = wh.table_exists(conn, target)
    carried, owner = _carried_over(wh, conn, target, new) if exists else ([], [])
    _run(conn, sql.create_table_as_new(wh.schema, target, new, request.schema.columns,
                                       request.schema.key_targets, wh.dialect, request.design))
    if parts and any(c.kind in sql.PARSED_KINDS for c in request.schema.columns):
        # JSON and geometry are parsed on their way in: through staging, as in a merge.
        staging = naming.staging_table_name(target, request.load_id)
        _run(conn, [sql.create_staging(staging, request.schema.columns, wh.dialect)])
        wh.stage(conn, naming.quote_ident(staging), request.schema, request, parts)
        _run(conn, sql.append(wh.schema, new, staging, [c.name for c in request.schema.columns],
                              sql.insert_exprs(request.schema.columns, wh.dialect)))
        _run(conn, [sql.drop_staging(staging)])
    elif parts:
        wh.stage(conn, sql.table_ref(wh.schema, new), request.schema, request, parts)
    _run(conn, carried)
    _run(conn, sql.swap(wh.schema, target, new, old, exists))
    _run(conn, owner)


def delete_insert(wh: "Warehouse", conn: Connection, request: "LoadRequest", parts: Sequence["PendingPart"]) -> None:
    """DELETE every row of the target and INSERT the new snapshot from staging, in the load's
    transaction: the table, its grants and its views stay; readers see the old rows until
    the commit (and in Redshift the deleted rows wait for VACUUM)."""
    target = request.target_table
    wh.ensure_table(conn, target, request.schema, request.design)
    staging = naming.staging_table_name(target, request.load_id)
    _run(conn, [sql.create_staging(staging, request.schema.columns, wh.dialect)])
    if parts:
        wh.stage(conn, naming.quote_ident(staging), request.schema, request, parts)
    _run(conn, sql.delete_all_insert(wh.schema, target, staging, [c.name for c in request.schema.columns],
                                     sql.insert_exprs(request.schema.columns, wh.dialect)))
    _run(conn, [sql.drop_staging(staging)])


MODES: dict[str, Any] = {"swap": swap_in, "delete_insert": delete_insert}
