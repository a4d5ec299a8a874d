"""Time formats at the edges. Internally the sandbox counts integer UTC epoch
seconds; WB statistics speaks Moscow time without a zone, Allegro and WB FBS
speak UTC with `Z`, WB feedbacks carry an explicit offset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache

MSK = timezone(timedelta(hours=3))


def to_dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def to_epoch(dt: datetime) -> float:
    if dt.tzinfo is None:
        raise ValueError("naive datetime")
    return dt.timestamp()


def msk_naive(epoch: int) -> str:
    """WB statistics format: `2026-11-20T15:04:05` in Moscow time, no zone.

    Moscow is UTC+3 all year: whole seconds are split by arithmetic, the date part is built
    once per day (two of these per statistics row; `strftime` was a tenth of a page's CPU)."""
    if type(epoch) is not int:
        return datetime.fromtimestamp(epoch, tz=MSK).strftime("%Y-%m-%dT%H:%M:%S")
    day, second = divmod(epoch + _MSK_OFFSET, 86400)
    hour, rest = divmod(second, 3600)
    minute, sec = divmod(rest, 60)
    return f"{_msk_date(day)}{hour:02d}:{minute:02d}:{sec:02d}"


_MSK_OFFSET = 3 * 3600


@lru_cache(maxsize=4096)
def _msk_date(day: int) -> str:
    """`2026-11-20T` of the Moscow day `day` (days since 1970-01-01, Moscow time)."""
    return datetime.fromtimestamp(day * 86400 - _MSK_OFFSET, tz=MSK).strftime("%Y-%m-%dT")


def utc_z(epoch: float, millis: bool = False) -> str:
    dt = datetime.fromtimestamp(epoch, tz=UTC)
    if millis:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def msk_offset(epoch: int) -> str:
    """WB feedbacks `createdDate`: explicit +03:00 offset."""
    return datetime.fromtimestamp(epoch, tz=MSK).isoformat()


def parse_wb_date_from(value: str) -> float:
    """Parse WB `dateFrom`: RFC3339 date or date-time; no zone means Moscow."""
    text = value.strip()
    if len(text) == 10:
        text += "T00:00:00"
    text = text.replace("Z", "+00:00")
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=MSK)
    return dt.timestamp()


def parse_iso_utc(value: str) -> float:
    """Parse an ISO 8601 time (Allegro filters); a missing zone is UTC."""
    dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()
