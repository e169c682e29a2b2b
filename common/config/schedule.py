"""When a table syncs on its own: a `schedule:` of cron syntax ("*/5 * * * *": minute, hour,
day of month, month, day of week) or an interval ({every: 5m}), as Celery beat schedules."""
from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

_EVERY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def normalise(value: Any) -> str | None:
    """The schedule as stored in a table's settings: 'cron:<5 fields>', 'every:<seconds>', or
    None for `off`/unset. ValueError says what is wrong (pydantic names the file and key)."""
    if value is None or value is False or (isinstance(value, str) and value.strip().lower() == "off"):
        return None
    if isinstance(value, dict):
        if set(value) != {"every"}:
            raise ValueError("a schedule is cron text ('*/5 * * * *') or {every: 5m}")
        m = _EVERY.match(str(value["every"]))
        if not m or float(m.group(1)) <= 0:
            raise ValueError(f"every: {value['every']!r}: write a number and s, m, h or d (30s, 5m, 1h)")
        return f"every:{float(m.group(1)) * _UNITS[m.group(2)]:g}"
    if isinstance(value, str):
        fields = value.split()
        if len(fields) != 5:
            raise ValueError(f"schedule {value!r}: cron syntax has 5 fields (minute hour day-of-month "
                             f"month day-of-week), e.g. '*/5 * * * *'; or use {{every: 5m}}")
        try:
            to_celery(f"cron:{' '.join(fields)}")
        except Exception as exc:  # celery's parser says which field is wrong
            raise ValueError(f"schedule {value!r}: {exc}") from None
        return f"cron:{' '.join(fields)}"
    raise ValueError("a schedule is cron text ('*/5 * * * *') or {every: 5m}")


def to_celery(spec: str) -> Any:
    """A normalised schedule as a Celery beat schedule."""
    from celery.schedules import crontab, schedule

    kind, _, text = spec.partition(":")
    if kind == "every":
        return schedule(timedelta(seconds=float(text)))
    minute, hour, day_of_month, month, day_of_week = text.split()
    return crontab(minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month,
                   day_of_week=day_of_week)


def interval_s(spec: str) -> float | None:
    """Seconds between ticks of an interval schedule (None for cron)."""
    kind, _, text = spec.partition(":")
    return float(text) if kind == "every" else None
