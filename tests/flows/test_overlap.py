"""Fetching overlaps writing (tasks.pipeline.overlapped): a slow source and a slow writer take
about the larger of the two, not their sum; memory holds at most one batch being written and
one being filled; a failure on either side loses, repeats and reorders nothing, and a resume
continues at the first unwritten window."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from tasks.context import Batch, batched
from tasks.pipeline import overlapped

PAGE = 10  # items a page
BATCH = 30  # items a batch: three pages
WINDOWS = 12  # one page a window; a window's cursor is its number


@dataclass
class Page:
    items: list[int]
    cursor: int
    received: int = PAGE
    requests: int = 1


class BrokenSource(RuntimeError):
    pass


class BrokenWriter(RuntimeError):
    pass


@dataclass
class Recorder:
    """What the fakes did, and when (the loop's clock): intervals, not a wall-clock verdict."""

    fetches: list[tuple[int, float, float]] = field(default_factory=list)  # window, start, end
    writes: list[tuple[list[int], float, float]] = field(default_factory=list)
    store: list[int] = field(default_factory=list)  # every item written, in order
    progress: int | None = None  # the resume point written with the last batch
    filling: int = 0  # batches whose first page was fetched and that are not written yet
    most_alive: int = 0

    def now(self) -> float:
        return asyncio.get_running_loop().time()


async def slow_pages(rec: Recorder, *, start: int = 0, fail_at: int | None = None, delay: float = 0.02):
    """Window after window from `start` (a resume point), each costing `delay` to fetch."""
    for window in range(start, WINDOWS):
        began = rec.now()
        await asyncio.sleep(delay)  # the round trip of a page
        if window == fail_at:
            raise BrokenSource(f"window {window}")
        rec.fetches.append((window, began, rec.now()))
        if (window - start) % (BATCH // PAGE) == 0:
            rec.filling += 1
            rec.most_alive = max(rec.most_alive, rec.filling)
        yield Page([window * PAGE + i for i in range(PAGE)], cursor=window + 1)


def slow_writer(rec: Recorder, *, delay: float = 0.06, fail_on: int | None = None):
    async def write(batch: Batch) -> None:
        began = rec.now()
        await asyncio.sleep(delay)  # the transaction
        if len(rec.writes) == fail_on:
            raise BrokenWriter(f"batch {fail_on}")
        rec.store.extend(batch.items)  # rows and their resume point, one transaction
        rec.progress = batch.cursor
        rec.writes.append((batch.items, began, rec.now()))
        rec.filling -= 1

    return write


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


async def test_the_next_batch_is_fetched_while_one_is_written() -> None:
    rec = Recorder()
    written = await overlapped(batched(slow_pages(rec), BATCH), slow_writer(rec))
    assert written == WINDOWS * PAGE // BATCH
    assert rec.store == list(range(WINDOWS * PAGE))  # every item once, in order
    # Each write after the first ran while the pages of the batch after it were fetched: the
    # fetching that fell inside the writes is most of the fetching there was.
    fetch_spans = [(b, e) for _, b, e in rec.fetches]
    write_spans = [(b, e) for _, b, e in rec.writes]
    hidden = sum(_overlap(f, w) for f in fetch_spans for w in write_spans)
    fetched = sum(e - b for b, e in fetch_spans)
    first_batch = sum(e - b for b, e in fetch_spans[: BATCH // PAGE])  # nothing to write yet
    assert hidden > 0.8 * (fetched - first_batch)
    # Bounded memory: never more than one batch being written and one being filled.
    assert rec.most_alive == 2


async def test_a_fast_source_waits_for_the_writer_instead_of_piling_up_batches() -> None:
    rec = Recorder()
    await overlapped(batched(slow_pages(rec, delay=0.0), BATCH), slow_writer(rec, delay=0.05))
    assert rec.most_alive == 2
    assert rec.store == list(range(WINDOWS * PAGE))


async def test_a_failed_fetch_mid_overlap_loses_nothing_and_the_resume_continues_at_the_first_unwritten_window() -> (
    None
):
    rec = Recorder()
    with pytest.raises(BrokenSource):
        await overlapped(batched(slow_pages(rec, fail_at=7), BATCH), slow_writer(rec))
    # Windows 0-6 were read; all of them are written (the pages read before the failure as a
    # last batch), in order, and the resume point covers exactly them.
    assert rec.store == list(range(7 * PAGE)) and rec.progress == 7
    await overlapped(batched(slow_pages(rec, start=rec.progress), BATCH), slow_writer(rec))
    assert rec.store == list(range(WINDOWS * PAGE))


async def test_a_failed_write_mid_overlap_stops_the_read_and_the_resume_rewrites_only_what_was_not_written() -> None:
    rec = Recorder()
    pages = slow_pages(rec)
    with pytest.raises(BrokenWriter):
        await overlapped(batched(pages, BATCH), slow_writer(rec, fail_on=2))
    # Batches 0 and 1 are stored with their resume point; batch 2 is not, nor anything after it.
    assert rec.store == list(range(2 * BATCH)) and rec.progress == 2 * BATCH // PAGE
    # The read stopped: at most the batch after the failed one had been fetched, and the source
    # is closed (no fetch goes on behind the failure).
    assert max(w for w, _, _ in rec.fetches) < 4 * BATCH // PAGE
    with pytest.raises(StopAsyncIteration):
        await anext(pages)
    await overlapped(batched(slow_pages(rec, start=rec.progress), BATCH), slow_writer(rec))
    assert rec.store == list(range(WINDOWS * PAGE))


async def test_an_empty_source_writes_nothing() -> None:
    async def nothing() -> AsyncIterator[Batch]:
        return
        yield  # pragma: no cover

    rec = Recorder()
    assert await overlapped(nothing(), slow_writer(rec)) == 0 and rec.store == []
