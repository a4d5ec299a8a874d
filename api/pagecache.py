"""Each person's part of a batch poll's answer, as encoded, for as long as what it was made of
is unchanged: the fast path's (api.fastroutes) per worker, on the event loop only.

A page is a function of the row its statement reads for the person (their cursor, settings,
shops and the outbox rows after the cursor: storage.outbox.pages_sql), the limit and the moment;
of the moment only until the next group window closes (grouping.Plan.until). So the row is the
key, as a digest: an ack, a new row, a setting or a membership changed in any worker, or by any
process, is a different row and a new page; a window that closed is past the entry's `until`.
Nothing is invalidated by hand.

Why: under the mixed load a batch poll was ~5% of the requests and a third of the CPU, ~75 us of
Python a person (decoding the rows, grouping, the items, their JSON) for pages that, polled
every few seconds, had mostly not changed since the last batch (benchmarks/api/README.md).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

# Encoded parts kept per worker, in bytes (least recently used go first): a part is ~1 KB for a
# bot's page of 20, so ~30,000 people.
MAX_BYTES = 32 * 1024 * 1024
ENTRY_OVERHEAD = 200  # bytes: the entry, its key and digest


def digest(row: Sequence[Any], limit: int) -> bytes:
    """What a page is made of, apart from the moment: the person's row and the page's limit."""
    return hashlib.blake2b(orjson.dumps((limit, *row), default=str), digest_size=16).digest()


@dataclass(frozen=True, slots=True)
class Entry:
    inputs: bytes  # digest()
    made_at: datetime
    until: datetime | None  # storage.outbox.Page.until
    part: bytes

    def serves(self, inputs: bytes, now: datetime) -> bool:
        return inputs == self.inputs and self.made_at <= now and (self.until is None or now < self.until)


class PageCache:
    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[int, Entry] = OrderedDict()
        self._bytes = 0

    def get(self, telegram_id: int, inputs: bytes, now: datetime) -> bytes | None:
        entry = self._entries.get(telegram_id)
        if entry is None or not entry.serves(inputs, now):
            return None
        self._entries.move_to_end(telegram_id)
        return entry.part

    def put(self, telegram_id: int, inputs: bytes, made_at: datetime, until: datetime | None, part: bytes) -> None:
        old = self._entries.pop(telegram_id, None)
        if old is not None:
            self._bytes -= len(old.part) + ENTRY_OVERHEAD
        self._entries[telegram_id] = Entry(inputs, made_at, until, part)
        self._bytes += len(part) + ENTRY_OVERHEAD
        while self._bytes > self.max_bytes and self._entries:
            _, gone = self._entries.popitem(last=False)
            self._bytes -= len(gone.part) + ENTRY_OVERHEAD

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)
