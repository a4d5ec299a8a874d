"""A real sync process for tests/flows/test_dead_runs.py, stuck on a slow marketplace until killed.

`python -m tests.flows.hanging_sync SHOP_ID`: syncs the shop against an in-process sandbox
(the same seed as the test's, so the same tokens) whose statistics host answers after ten
minutes; the database comes from DATABASE_URL, as for any sellerpulse process.
"""

from __future__ import annotations

import asyncio
import sys

from flows.sync import sync_one
from tasks.clients import set_client_factory
from tests.flows.conftest import clients_for, make_sandbox


async def main(shop_id: int) -> None:
    app = make_sandbox(faults="wb-statistics:slow=1", slow_seconds=600)
    set_client_factory(lambda: clients_for(app))
    async with clients_for(app) as clients:
        await sync_one(shop_id, clients=clients)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
