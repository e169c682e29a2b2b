"""Time zones of DATETIME cursor values: which zone they are written in, and the hour that
a zone with daylight saving repeats each autumn.

TIMESTAMP values are read in UTC (the session's zone), so they never repeat. DATETIME
values are naive wall-clock times: when clocks go back, 02:00-03:00 happens twice, and a
row written in the second pass sorts behind rows written an hour earlier. A run whose
window touches such an hour re-reads it whole (see common/plan/planner.py)."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

log = logging.getLogger(__name__)

# No zone moves its clocks by more than this at once (Lord Howe: 30 min; most: 1 h).
MAX_SHIFT = timedelta(hours=2)


@lru_cache(maxsize=64)
def resolve(name: str | None) -> tzinfo | None:
    """A tzinfo for '+01:00', 'UTC' or an IANA name ('Europe/Paris'); None if unknown."""
    if not name:
        return None
    text = name.strip()
    if text.upper() in ("UTC", "GMT", "Z"):
        return timezone.utc
    if text[:1] in "+-" and ":" in text:
        sign = -1 if text[0] == "-" else 1
        hours, minutes = text[1:].split(":", 1)
        try:
            return timezone(sign * timedelta(hours=int(hours), minutes=int(minutes)))
        except ValueError:
            return None
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def to_local(utc_now: datetime, zone: tzinfo) -> datetime:
    """A naive UTC time as naive wall-clock time in zone."""
    return utc_now.replace(tzinfo=timezone.utc).astimezone(zone).replace(tzinfo=None)


def is_repeated(local: datetime, zone: tzinfo) -> bool:
    """True if this wall-clock time happens twice in zone (the autumn change)."""
    first = local.replace(tzinfo=zone, fold=0).utcoffset()
    second = local.replace(tzinfo=zone, fold=1).utcoffset()
    return first is not None and second is not None and first > second


def repeated_start(zone: tzinfo, lo: datetime, hi: datetime) -> datetime | None:
    """The start of the earliest repeated stretch of wall-clock time that overlaps [lo, hi],
    or None. Transitions fall on whole minutes; a long window is walked in quarter hours."""
    if isinstance(zone, timezone):
        return None  # a fixed offset never repeats
    step = timedelta(minutes=1) if hi - lo <= timedelta(days=3) else timedelta(minutes=15)
    t = lo.replace(second=0, microsecond=0)
    while t <= hi:
        if is_repeated(t, zone):
            while is_repeated(t - timedelta(minutes=1), zone):
                t -= timedelta(minutes=1)
            return t
        t += step
    return None


def widen_for_repeats(zone: tzinfo | None, cursor: datetime, lookback: timedelta) -> datetime:
    """Where a run starting `lookback` behind the committed cursor must start instead so
    that rows written during a repeated hour near the cursor are read: the start of that
    hour, minus the lookback. Without a repeated hour nearby: cursor - lookback."""
    lo = cursor - lookback
    if zone is None:
        return lo
    start = repeated_start(zone, lo - MAX_SHIFT, cursor + lookback)
    return lo if start is None else min(lo, start - lookback)
