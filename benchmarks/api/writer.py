"""A sync writing notifications while the API is under load: batches of new outbox rows for
random shops, each in its own transaction, as the pipeline writes them (advisory lock included).

    python -m benchmarks.api.writer URL --shops 500 [--batch 10] [--every 0.1]

Runs until SIGTERM; prints how many notifications it wrote.
"""

from __future__ import annotations

import argparse
import random
import signal
import threading

from sqlalchemy import create_engine

from sellerpulse.notify.drafts import Draft
from storage import outbox
from storage.db import session_scope


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.api.writer")
    parser.add_argument("url")
    parser.add_argument("--shops", type=int, default=500)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--every", type=float, default=0.1, help="seconds between batches")
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    engine = create_engine(args.url)
    with engine.connect():
        pass
    print("READY", flush=True)  # imported and connected: the measured run may start
    rng = random.Random(11)
    written, n = 0, 0
    while not stop.is_set():
        shop = rng.randint(1, args.shops)
        drafts = [
            Draft("new_order", f"writer:{n}:{i}", f"{n}-{i}", {"order_id": f"w{n}-{i}", "amount": "100.00"})
            for i in range(args.batch)
        ]
        with session_scope(engine) as session:
            written += outbox.add(session, shop_id=shop, drafts=drafts)
        n += 1
        stop.wait(args.every)
    print(f"WRITTEN {written}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
