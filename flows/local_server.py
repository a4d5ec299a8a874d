"""An ASGI app served on a local port from a thread: the demo's sandbox, API and Telegram stand-in."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from sellerpulse.errors import UserError


@contextmanager
def uvicorn_thread(app: object, port: int, name: str, *, hint: str = "") -> Iterator[str]:
    """Serve `app` on 127.0.0.1:port until the block ends; yields its URL. `hint` ends the error
    line when the port cannot be had (e.g. which option picks another)."""
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise UserError(f"the {name} did not start on port {port} (in use?){hint}")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
