"""Keyset bounds: tuples of key values, stored as JSON text in Redis and task state.

A value keeps its exact type through the round trip (Decimal stays Decimal,
datetime keeps microseconds), so a bound read back compares equal in MySQL.
"""
from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Sequence

Key = tuple[Any, ...]


def _encode_value(v: Any) -> Any:
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, Decimal):
        return {"dec": str(v)}
    if isinstance(v, datetime):
        return {"ts": v.isoformat(sep=" ", timespec="microseconds")}
    if isinstance(v, date):
        return {"date": v.isoformat()}
    if isinstance(v, timedelta):
        return {"td": v.total_seconds()}
    if isinstance(v, (bytes, bytearray)):
        return {"hex": bytes(v).hex()}
    if isinstance(v, float):
        return {"float": repr(v)}
    raise TypeError(f"cannot store key value {v!r} of type {type(v).__name__}")


_EPOCH = re.compile(r"^-?\d+(\.\d+)?$")


def parse_timestamp(value: Any) -> datetime:
    """The one parser of timestamps, whatever their form: a datetime, a date, epoch seconds,
    or ISO 8601 text ('2024-01-31', '2024-01-31 12:00:00.123456', '2024-01-31T12:00:00Z',
    '...+02:00'). A value with a zone is converted to UTC; the result is naive, as cursor
    values are. ValueError says what could not be parsed."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        dt = datetime.fromtimestamp(value, timezone.utc)
    elif isinstance(value, (str, bytes)):
        text = (value.decode() if isinstance(value, bytes) else value).strip()
        if _EPOCH.match(text):
            dt = datetime.fromtimestamp(float(text), timezone.utc)
        else:
            try:
                dt = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
            except ValueError:
                raise ValueError(f"cannot parse {text!r} as a timestamp: use ISO 8601, e.g. "
                                 f"2024-01-31 12:00:00[.ffffff][+00:00], or epoch seconds") from None
    else:
        raise ValueError(f"cannot parse {value!r} ({type(value).__name__}) as a timestamp")
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc).replace(tzinfo=None)
    return dt


def _decode_value(v: Any) -> Any:
    if not isinstance(v, dict):
        return v
    (tag, text), = v.items()
    return {"dec": Decimal, "ts": parse_timestamp, "date": date.fromisoformat,
            "td": lambda s: timedelta(seconds=s), "hex": bytes.fromhex,
            "float": float}[tag](text)


def encode(key: Sequence[Any] | None) -> str:
    """JSON text of a key tuple ('null' for an open bound)."""
    if key is None:
        return "null"
    return json.dumps([_encode_value(v) for v in key], separators=(",", ":"))


def decode(text: str | bytes | None) -> Key | None:
    """The key tuple of encode()'s text; None for an open bound."""
    if text is None:
        return None
    data = json.loads(text)
    if data is None:
        return None
    return tuple(_decode_value(v) for v in data)


def show(key: Key | None) -> str:
    """Human form of a key for messages and the CLI."""
    if key is None:
        return "(start)"
    vals = [v.isoformat(sep=" ") if isinstance(v, (datetime, date)) else str(v) for v in key]
    return vals[0] if len(vals) == 1 else "(" + ", ".join(vals) + ")"
