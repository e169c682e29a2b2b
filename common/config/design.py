"""Table design on Redshift: DISTSTYLE, DISTKEY and SORTKEY per table, from the pipeline's
`redshift_keys:` section or a `redshift_keys.json` file beside the pipeline files (the
format older MySQL-to-Redshift backup tools use: an object keyed by schema.table)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from common.errors import ConfigError, SchemaError


class _Keys(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SortKeySpec(_Keys):
    """A sort key with its type."""

    type: Literal["compound", "interleaved"] = "compound"
    columns: list[str] = Field(min_length=1)


class RedshiftKeys(_Keys):
    """A table's design on Redshift (the PostgreSQL stand-in ignores it). Columns are source
    column names; without any: DISTSTYLE AUTO SORTKEY AUTO."""

    distkey: str | None = None
    """Distribution key column (implies DISTSTYLE KEY)."""
    diststyle: Literal["AUTO", "EVEN", "ALL", "KEY"] | None = None
    sortkey: str | list[str] | SortKeySpec | None = None
    """One column, a list (compound), or {type: compound|interleaved, columns: [...]}."""

    @field_validator("diststyle", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        return v.upper() if isinstance(v, str) else v

    @model_validator(mode="after")
    def _consistent(self) -> "RedshiftKeys":
        if self.distkey and self.diststyle not in (None, "KEY"):
            raise ValueError(f"distkey {self.distkey!r} needs diststyle KEY (or no diststyle), not {self.diststyle}")
        if self.diststyle == "KEY" and not self.distkey:
            raise ValueError("diststyle KEY needs a distkey column")
        return self


@dataclass(frozen=True)
class TableDesign:
    """DISTSTYLE/DISTKEY/SORTKEY of a Redshift target, in source column names."""

    diststyle: str = "AUTO"
    distkey: str | None = None
    sort_type: str = "auto"
    """auto, none, compound or interleaved."""
    sort_columns: tuple[str, ...] = ()

    @classmethod
    def from_keys(cls, keys: "RedshiftKeys | None") -> "TableDesign":
        if keys is None:
            return cls()
        sort_type, columns = "auto", ()
        if isinstance(keys.sortkey, str):
            sort_type, columns = "compound", (keys.sortkey,)
        elif isinstance(keys.sortkey, list):
            sort_type, columns = "compound", tuple(keys.sortkey)
        elif isinstance(keys.sortkey, SortKeySpec):
            sort_type, columns = keys.sortkey.type, tuple(keys.sortkey.columns)
        diststyle = "KEY" if keys.distkey else (keys.diststyle or "AUTO")
        return cls(diststyle=diststyle, distkey=keys.distkey, sort_type=sort_type, sort_columns=columns)

    @property
    def columns(self) -> tuple[str, ...]:
        return ((self.distkey,) if self.distkey else ()) + self.sort_columns


def read_keys_file(folder: Path, tables: set[str]) -> dict[str, RedshiftKeys]:
    """The redshift_keys.json entries of `tables` (others are other pipelines' business)."""
    path = folder / "redshift_keys.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected an object keyed by schema.table")
    keys = {}
    for table, entry in data.items():
        if table not in tables:
            continue
        try:
            keys[table] = RedshiftKeys.model_validate(entry)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise ConfigError(f"{path}: {table}{'.' + where if where else ''}: {err['msg']}") from None
    return keys


def check_design(table: str, design: TableDesign, schema: Any) -> None:
    """Every column the design names must be a mapped column (SchemaError names it)."""
    mapped = {c.source for c in schema.columns}
    for col in design.columns:
        if col not in mapped:
            raise SchemaError(f"table {table}: redshift_keys names column {col!r}, which is not a copied column "
                              f"of the table (known: {', '.join(sorted(mapped))})")
