"""What a load is asked to do, and what it did."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from common.config.design import TableDesign
from common.model.records import PendingPart
from common.model.types import TableSchema


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

    kept_keys: dict[str, tuple[tuple[Any, ...], ...]] = field(default_factory=dict)
    """Per deletes part (a reconcile's keys only in the target): the keys the source has
    again, asked just before this load; they are not deleted."""
    soft_deletes: bool = False
    """Rows only in the target keep their row with _ferry_deleted_at set, instead of going."""
    deleted_at: str = ""
    """The time a soft delete writes (UTC, 'YYYY-MM-DD HH:MM:SS.ffffff')."""

    def schema_of(self, run_id: str) -> TableSchema:
        return self.run_schemas.get(run_id, self.schema)


@dataclass(frozen=True)
class LoadResult:
    """Parts copied in this load, and parts skipped because the ledger already had them."""

    loaded: tuple[PendingPart, ...]
    skipped: tuple[PendingPart, ...]
    deleted: dict[str, int] = field(default_factory=dict)
    """Target rows deleted (or soft-deleted) by each run's deletes parts."""

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.loaded)
