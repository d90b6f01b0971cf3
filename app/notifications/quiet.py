"""Quiet hours ("22:00-08:00" in program time): WeChat sends wait until the window ends."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo


def parse(spec: str) -> tuple[time, time] | None:
    """"22:00-08:00" → (22:00, 08:00); empty → None (quiet hours off). Raises ValueError if malformed."""
    spec = spec.strip()
    if not spec:
        return None
    try:
        start_s, end_s = spec.split("-")
        start, end = time.fromisoformat(start_s.strip()), time.fromisoformat(end_s.strip())
    except ValueError as exc:
        raise ValueError(f"quiet hours must look like 22:00-08:00, got {spec!r}") from exc
    if start.tzinfo is not None or end.tzinfo is not None:
        # Program time (LAUREL_TIMEZONE): an aware time cannot be compared with the clock's, so it would fail every
        # dispatcher run rather than here at start-up.
        raise ValueError(f"quiet hours are in program time, without an offset (22:00-08:00), got {spec!r}")
    if start == end:
        return None
    return start, end


def quiet_until(now: datetime, spec: str, tz: ZoneInfo) -> datetime | None:
    """When the quiet window containing `now` ends (aware datetime), or None if `now` is not quiet."""
    window = parse(spec)
    if window is None:
        return None
    start, end = window
    local = now.astimezone(tz)
    clock = local.time().replace(tzinfo=None)
    if start < end:  # same-day window, e.g. 12:00-14:00
        inside = start <= clock < end
        end_day = local.date()
    else:  # spans midnight, e.g. 22:00-08:00
        inside = clock >= start or clock < end
        end_day = local.date() + timedelta(days=1) if clock >= start else local.date()
    if not inside:
        return None
    return datetime.combine(end_day, end, tzinfo=tz)


def next_midnight(now: datetime, tz: ZoneInfo) -> datetime:
    """Start of the next calendar day in program time (WeChat's daily quota resets then)."""
    local = now.astimezone(tz)
    return datetime.combine(local.date() + timedelta(days=1), time(0, 0), tzinfo=tz)
