"""Time conversions at the edge: Moscow wall time (WB statistics) and UTC strings."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

MSK = timezone(timedelta(hours=3), "MSK")  # Russia has had no DST since 2014
_MSK_OFFSET = timedelta(hours=3)
_NULL_DATE_PREFIX = "0001-01-01"


def msk_to_utc(value: str) -> datetime:
    """'2026-11-20T12:00:00' (Moscow, no zone) -> aware UTC. An explicit offset wins."""
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        # Subtracting is faster than astimezone and exact for a fixed +3 offset.
        return (dt - _MSK_OFFSET).replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def msk_to_utc_or_none(value: str | None) -> datetime | None:
    """Same, but WB's '0001-01-01T00:00:00' placeholder (and empty) means 'no date'."""
    if not value or value.startswith(_NULL_DATE_PREFIX):
        return None
    return msk_to_utc(value)


def utc_to_msk_param(value: datetime) -> str:
    """Aware datetime -> the zone-less Moscow string WB expects in `dateFrom`."""
    if value.tzinfo is None:
        raise ValueError("naive datetime: pass an aware datetime (UTC)")
    local = value.astimezone(MSK).replace(tzinfo=None)
    return local.isoformat(timespec="microseconds" if local.microsecond else "seconds")


def parse_utc(value: str) -> datetime:
    """ISO 8601 with 'Z' or an offset -> aware UTC. A naive value is taken as UTC."""
    dt = datetime.fromisoformat(value)
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def to_utc_param(value: datetime) -> str:
    """Aware datetime -> '2026-11-20T09:00:00.000Z' (Allegro filters)."""
    if value.tzinfo is None:
        raise ValueError("naive datetime: pass an aware datetime (UTC)")
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def to_unix(value: datetime) -> int:
    if value.tzinfo is None:
        raise ValueError("naive datetime: pass an aware datetime (UTC)")
    return int(value.timestamp())


def msk_day_param(day: date) -> str:
    """A calendar day for WB `flag=1` reads (time is ignored there)."""
    return day.isoformat()
