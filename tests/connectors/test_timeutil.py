from datetime import UTC, datetime, timedelta, timezone

import pytest

from connectors.timeutil import msk_to_utc, msk_to_utc_or_none, parse_utc, to_utc_param, utc_to_msk_param


def test_moscow_wall_time_becomes_aware_utc() -> None:
    assert msk_to_utc("2026-11-20T02:30:00") == datetime(2026, 11, 19, 23, 30, tzinfo=UTC)
    assert msk_to_utc("2026-11-20T12:00:00.123456").microsecond == 123456


def test_an_explicit_offset_wins_over_moscow() -> None:
    assert msk_to_utc("2026-11-20T12:00:00+05:00") == datetime(2026, 11, 20, 7, tzinfo=UTC)


def test_wb_null_date_placeholder_is_none() -> None:
    assert msk_to_utc_or_none("0001-01-01T00:00:00") is None
    assert msk_to_utc_or_none("") is None
    assert msk_to_utc_or_none("2026-01-01T03:00:00") == datetime(2026, 1, 1, tzinfo=UTC)


def test_moscow_param_round_trips() -> None:
    moment = datetime(2026, 11, 19, 23, 30, 5, tzinfo=UTC)
    assert utc_to_msk_param(moment) == "2026-11-20T02:30:05"
    assert msk_to_utc(utc_to_msk_param(moment)) == moment
    assert utc_to_msk_param(moment.replace(microsecond=500)) == "2026-11-20T02:30:05.000500"


def test_naive_datetimes_are_refused_when_sending() -> None:
    with pytest.raises(ValueError):
        utc_to_msk_param(datetime(2026, 1, 1))
    with pytest.raises(ValueError):
        to_utc_param(datetime(2026, 1, 1))


def test_utc_strings() -> None:
    assert parse_utc("2026-11-20T10:00:00Z") == datetime(2026, 11, 20, 10, tzinfo=UTC)
    plus3 = datetime(2026, 11, 20, 13, tzinfo=timezone(timedelta(hours=3)))
    assert to_utc_param(plus3) == "2026-11-20T10:00:00.000Z"
