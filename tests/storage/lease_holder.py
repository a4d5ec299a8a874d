"""A process that holds a shop's lease until it is killed, for tests/storage/test_leases.py.

`python -m tests.storage.lease_holder SHOP_ID SECONDS`: takes the shop's sync lease (SECONDS
long, renewed every third of it as a sync does), prints its token, then waits for ever; the
database comes from DATABASE_URL, as for any sellerpulse process.
"""

from __future__ import annotations

import asyncio
import sys

from storage.db import get_engine
from storage.leases import hold


async def main(shop_id: int, seconds: float) -> None:
    async with hold(get_engine(), shop_id=shop_id, kind="sync", seconds=seconds) as lease:
        print(lease.token, flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), float(sys.argv[2])))
