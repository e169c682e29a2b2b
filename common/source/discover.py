"""`ferry discover`: a pipeline's tables proposed from the source's own information_schema,
each with the strategy ferry recommends and the reasons for it.

- timestamp: a last-modified column (DATETIME/TIMESTAMP, ON UPDATE CURRENT_TIMESTAMP or a
  name such as updated_at) that an index starts with: updates are copied too;
- id: a single-column AUTO_INCREMENT integer key, or a composite key with an AUTO_INCREMENT
  column (that column as the cursor, `cursor_increasing: true`): new rows are copied, not
  updates or deletes (the CREATE INDEX that would allow the timestamp strategy is named when
  the table has a last-modified column without an index);
- full: a table of at most FULL_MAX_ROWS rows, or a key the id strategy refuses (composite,
  text, not AUTO_INCREMENT): the whole table each run;
- columns the type map cannot copy are excluded, each with the reason;
- a table without a primary key uses a UNIQUE index of NOT NULL columns as its key; with
  none it is written commented out, saying why.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any

from common.errors import SchemaError
from common.model.types import map_column
from common.source.catalog import _COLUMNS_SQL, cursor_index_sql, json_columns
from common.source.connection import fetch

FULL_MAX_ROWS = 1_000_000
"""A table of at most this many rows (the server's estimate) is copied whole when the id
and timestamp strategies do not suit it."""
LAST_MODIFIED_NAMES = ("updated_at", "last_update", "last_updated", "modified_at", "last_modified", "updated",
                       "modified", "update_time", "updated_on", "modified_on", "date_modified", "changed_at")
_INTEGERS = ("tinyint", "smallint", "mediumint", "int", "integer", "bigint")


@dataclass
class Proposal:
    """One table's entry: its settings and the comments that explain them."""

    key: str
    settings: dict[str, Any] = field(default_factory=dict)
    why: list[str] = field(default_factory=list)
    excluded: dict[str, str] = field(default_factory=dict)
    """Column -> why it is not copied."""
    skipped: str | None = None
    """Why the table cannot be copied as it is (the entry is written commented out)."""


def _text(v: Any) -> Any:
    return v.decode() if isinstance(v, (bytes, bytearray)) else v


def _rows(conn: Any, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
    return [{k.lower(): _text(v) for k, v in r.items()} for r in fetch(conn, sql, params, dictionary=True)]


def tables(conn: Any, schema: str, pattern: str | None) -> list[dict[str, Any]]:
    """The schema's base tables (name, estimated rows) whose name matches the glob pattern(s)
    (comma-separated), by name."""
    found = _rows(conn, "SELECT table_name AS name, table_rows AS est_rows FROM information_schema.tables"
                        " WHERE table_schema = %s AND table_type = 'BASE TABLE' ORDER BY table_name", (schema,))
    if pattern:
        globs = [p.strip() for p in pattern.split(",") if p.strip()]
        found = [t for t in found if any(fnmatch.fnmatchcase(t["name"], g) for g in globs)]
    return found


def _indexes(conn: Any, schema: str, table: str) -> dict[str, dict[str, Any]]:
    """name -> {columns (in order), unique}."""
    out: dict[str, dict[str, Any]] = {}
    for r in _rows(conn, "SELECT index_name AS name, column_name AS col, non_unique AS non_unique"
                         " FROM information_schema.statistics WHERE table_schema = %s AND table_name = %s"
                         " ORDER BY index_name, seq_in_index", (schema, table)):
        entry = out.setdefault(r["name"], {"columns": [], "unique": int(r["non_unique"]) == 0})
        entry["columns"].append(r["col"])
    return out


def _last_modified(columns: list[dict[str, Any]], key: list[str]) -> dict[str, Any] | None:
    """The table's last-modified column: ON UPDATE CURRENT_TIMESTAMP first, then by name."""
    temporal = [c for c in columns if c["data_type"].lower() in ("datetime", "timestamp") and c["column_name"] not in key]
    on_update = [c for c in temporal if "on update" in str(c.get("extra") or "").lower()]
    if on_update:
        return on_update[0]
    named = [c for c in temporal if c["column_name"].lower() in LAST_MODIFIED_NAMES]
    return named[0] if named else None


def propose(conn: Any, schema: str, table: dict[str, Any]) -> Proposal:
    """The entry ferry recommends for one table."""
    name = table["name"]
    key = f"{schema}.{name}"
    prop = Proposal(key)
    columns = _rows(conn, _COLUMNS_SQL, (schema, name))
    indexes = _indexes(conn, schema, name)
    rows = int(table["est_rows"] or 0)
    json_cols = json_columns(conn, schema, name)
    for c in columns:
        try:
            map_column(key, {**c, "is_json": c["column_name"] in json_cols})
        except SchemaError as exc:
            prop.excluded[c["column_name"]] = str(exc).split(": ", 1)[-1].split(";")[0]
    by_name = {c["column_name"]: c for c in columns}
    pk = indexes.get("PRIMARY", {}).get("columns", [])
    if not pk:
        unique = [i for n, i in sorted(indexes.items()) if i["unique"]
                  and all(by_name[c]["is_nullable"] == "NO" for c in i["columns"])]
        if not unique:
            prop.skipped = ("no primary key and no UNIQUE index of NOT NULL columns: ferry merges by key; add a "
                            "primary key (or set primary_key to unique NOT NULL columns)")
            return prop
        pk = unique[0]["columns"]
        prop.settings["primary_key"] = list(pk)
        prop.why.append(f"no primary key: the UNIQUE index on ({', '.join(pk)}) is the key")
    bad_key = [c for c in pk if c in prop.excluded or by_name[c]["data_type"].lower() in ("enum", "set")]
    if bad_key:
        prop.skipped = f"key column {bad_key[0]} cannot be copied as a key ({prop.excluded.get(bad_key[0], 'ENUM/SET')})"
        return prop
    if prop.excluded:
        prop.settings["exclude_columns"] = sorted(prop.excluded)
    size = f"about {rows:,} rows"
    lm = _last_modified(columns, pk)
    lm_index = None
    if lm is not None:
        lm_index = next((n for n, i in sorted(indexes.items()) if i["columns"][0] == lm["column_name"]), None)
    if lm is not None and lm_index is not None:
        prop.settings.update(strategy="timestamp", cursor=lm["column_name"])
        prop.why.append(f"{size}; last-modified column {lm['column_name']} with index {lm_index}: new and updated "
                        f"rows are copied (deletes: schedule a reconcile)")
        return prop
    grows = [c for c in pk if by_name[c]["data_type"].lower() in _INTEGERS
             and "auto_increment" in str(by_name[c].get("extra") or "").lower()]
    if grows:
        prop.settings["strategy"] = "id"
        if len(pk) == 1:
            prop.why.append(f"{size}; AUTO_INCREMENT key {pk[0]}: new rows are copied, updates and deletes are not "
                            f"(schedule a reconcile to bring those)")
        else:  # (tenant_id, id) with id AUTO_INCREMENT: id alone grows for the whole table
            prop.settings.update(cursor=grows[0], cursor_increasing=True)
            prop.why.append(f"{size}; composite key ({', '.join(pk)}) whose {grows[0]} is AUTO_INCREMENT: it alone "
                            f"grows for the whole table, so the id strategy walks ({grows[0]}, ...): new rows are "
                            f"copied, updates and deletes are not (schedule a reconcile to bring those)")
    else:
        prop.settings["strategy"] = "full"
        if len(pk) > 1:
            reason = f"a composite key ({', '.join(pk)}), which has no increasing cursor"
        elif by_name[pk[0]]["data_type"].lower() not in _INTEGERS:
            reason = f"a {by_name[pk[0]]['data_type'].upper()} key, which does not increase"
        else:
            reason = f"key {pk[0]} is not AUTO_INCREMENT, so new rows may take any value"
        how = " (swapped in at once)" if rows <= FULL_MAX_ROWS else ", which is slow at this size"
        prop.why.append(f"{size}, {reason}: copied whole each run{how}")
    if lm is not None:  # a last-modified column without an index: say how to get the timestamp strategy
        goal = "to copy updates too" if grows else "to copy only changes"
        prop.why.append(f"{lm['column_name']} holds the last change but no index starts with it: run "
                        f"{cursor_index_sql(key, lm['column_name'], pk)}, then set strategy: timestamp and "
                        f"cursor: {lm['column_name']} {goal}")
    return prop


def discover(conn: Any, schema: str, pattern: str | None) -> list[Proposal]:
    return [propose(conn, schema, t) for t in tables(conn, schema, pattern)]
