"""Each person's part of a batch poll's answer, as encoded, for as long as what it was made of
is unchanged: the fast path's (api.fastroutes) per worker, on the event loop only.

A page is a function of the row its statement reads for the person (their cursor, settings,
shops and the outbox rows after the cursor: storage.outbox.pages_sql), the limit and the moment;
of the moment only until the next group window closes (grouping.Plan.until). So the row is the
key, compared whole (a digest of it cost 8-25 us a person, a third of making the page): an ack,
a new row, a setting or a membership changed in any worker or process is a different row, so a
new page; a window that closed is past the entry's `until`. Nothing is invalidated by hand.

Why: under the mixed load a batch poll was ~5% of the requests and a third of the CPU, ~75 us of
Python a person (decoding the rows, grouping, the items, their JSON) for pages that, polled
every few seconds, had mostly not changed since the last batch (benchmarks/api/README.md).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# Kept per worker, in bytes of the parts and the rows they were made of (least recently used go
# first): ~1 KB of answer and ~1.5 KB of row a person for a bot's page of 20 (benchmarks/api),
# so ~10,000 people.
MAX_BYTES = 32 * 1024 * 1024
ENTRY_OVERHEAD = 400  # bytes: the entry, its tuple and scalars

Inputs = tuple[Any, ...]


def inputs_of(row: Sequence[Any], limit: int) -> Inputs:
    """What a page is made of, apart from the moment: the person's row and the page's limit."""
    return (limit, *row)


@dataclass(frozen=True, slots=True)
class Entry:
    inputs: Inputs
    made_at: datetime
    until: datetime | None  # storage.outbox.Page.until
    part: bytes
    size: int

    def serves(self, inputs: Inputs, now: datetime) -> bool:
        return self.made_at <= now and (self.until is None or now < self.until) and inputs == self.inputs


class PageCache:
    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[int, Entry] = OrderedDict()
        self._bytes = 0

    def get(self, telegram_id: int, inputs: Inputs, now: datetime) -> bytes | None:
        entry = self._entries.get(telegram_id)
        if entry is None or not entry.serves(inputs, now):
            return None
        self._entries.move_to_end(telegram_id)
        return entry.part

    def put(self, telegram_id: int, inputs: Inputs, made_at: datetime, until: datetime | None, part: bytes) -> None:
        old = self._entries.pop(telegram_id, None)
        if old is not None:
            self._bytes -= old.size
        size = len(part) + sum(len(x) for x in inputs if isinstance(x, str)) + ENTRY_OVERHEAD
        self._entries[telegram_id] = Entry(inputs, made_at, until, part, size)
        self._bytes += size
        while self._bytes > self.max_bytes and self._entries:
            _, gone = self._entries.popitem(last=False)
            self._bytes -= gone.size

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)
