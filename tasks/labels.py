"""How a task reads in Flower: its visible arguments (names and ids only)."""
from __future__ import annotations

from typing import Any


def shown(pipeline: str, table: str, run_id: str, **more: Any) -> dict[str, str]:
    """apply_async options that make a task read well in Flower: its visible arguments are
    pipeline, table and run, then `more`, labelled (a load's chord results never show).
    Task arguments are names and ids only, so nothing secret can show either way."""
    extra = "".join(f", {k}={v!r}" for k, v in more.items())
    return {"argsrepr": f"(pipeline={pipeline!r}, table={table!r}, run={run_id!r}{extra})", "kwargsrepr": "{}"}
