"""How far back WB statistics go: 90 days. Asking for older days costs requests and returns
nothing, so a history read is clamped to what WB still keeps, and says so."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from connectors.timeutil import MSK

STATISTICS_RETENTION_DAYS = 90


def oldest_statistics_day(now: datetime) -> date:
    """The oldest Moscow calendar day WB statistics still hold (in part: its earliest hours may
    already be gone)."""
    return (now.astimezone(MSK) - timedelta(days=STATISTICS_RETENTION_DAYS)).date()


@dataclass(frozen=True)
class HistoryWindow:
    """The days a WB history read covers: [since, until], after clamping to the retention."""

    asked_since: date
    since: date
    until: date

    @property
    def clamped(self) -> bool:
        return self.since > self.asked_since

    @property
    def empty(self) -> bool:
        return self.since > self.until

    @property
    def note(self) -> str | None:
        """The one-line message for logs, summaries and the caller; None when nothing was cut."""
        if not self.clamped:
            return None
        if self.empty:
            return (
                f"WB keeps statistics for {STATISTICS_RETENTION_DAYS} days: nothing between "
                f"{self.asked_since} and {self.until} is left to read (the oldest day WB holds is {self.since})"
            )
        gone = (self.since - self.asked_since).days
        return (
            f"WB keeps statistics for {STATISTICS_RETENTION_DAYS} days: reading orders and sales from "
            f"{self.since}, not {self.asked_since} (the {gone} day(s) before are gone from WB)"
        )


def history_window(since: date, until: date, now: datetime) -> HistoryWindow:
    return HistoryWindow(asked_since=since, since=max(since, oldest_statistics_day(now)), until=until)
