"""`sellerpulse sandbox ...` sub-commands (argparse).

    sellerpulse sandbox [run] [--host H] [--port N] [--seed N] [--scenario NAME]
                        [--speed X] [--faults SPEC] [--latency SPEC] [--no-rate-limits]
                        [--rate-limit-scale X] [--auto-approve]
                        [--allegro-token-requests N] [--cache-responses]
    sellerpulse sandbox approve CODE [--shop S] [--url URL]
    sellerpulse sandbox deny CODE [--url URL]
    sellerpulse sandbox advance SECONDS [--url URL]

`run` prints one KEY=VALUE per line (base URLs, client id/secret, a WB token
per WB shop, an Allegro token pair per Allegro shop), then serves until
Ctrl-C. Wire it with `register(subparsers)`; `python -m sandbox` works too.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any

from sandbox.faults import HOSTS, FaultSpecError, parse_faults
from sandbox.latency import LatencySpecError, parse_latency
from sandbox.scenario import SCENARIOS

DEFAULT_PORT = 8765
URL_KEYS = {
    "allegro-auth": "ALLEGRO_AUTH_URL",
    "allegro-api": "ALLEGRO_API_URL",
    "wb-statistics": "WB_STATISTICS_URL",
    "wb-analytics": "WB_ANALYTICS_URL",
    "wb-feedbacks": "WB_FEEDBACKS_URL",
    "wb-content": "WB_CONTENT_URL",
    "wb-marketplace": "WB_MARKETPLACE_URL",
}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("sandbox", help="run the local marketplace sandbox")
    _run_options(parser)
    parser.set_defaults(func=run)
    sub = parser.add_subparsers(dest="sandbox_command")
    run_p = sub.add_parser("run", help="serve the sandbox (default)")
    _run_options(run_p)
    run_p.set_defaults(func=run)
    for name, helptext in (("approve", "approve an Allegro device code"), ("deny", "deny an Allegro device code")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("code", help="user code (as shown, spaces allowed) or device code")
        p.add_argument("--url", default=f"http://127.0.0.1:{DEFAULT_PORT}", help="sandbox base URL")
        if name == "approve":
            p.add_argument("--shop", default=None, help="Allegro shop that grants access (default: the first)")
        p.set_defaults(func=approve if name == "approve" else deny)
    adv = sub.add_parser("advance", help="move the sandbox clock forward")
    adv.add_argument("seconds", type=float)
    adv.add_argument("--url", default=f"http://127.0.0.1:{DEFAULT_PORT}")
    adv.set_defaults(func=advance)


def _run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--scenario", default="demo", help=f"one of {', '.join(SCENARIOS)} (NAME:key=value,... overrides sizes)"
    )
    p.add_argument("--speed", type=float, default=1.0, help="sandbox seconds per real second")
    p.add_argument("--faults", default=None, help="e.g. 'wb-statistics:429=0.2,5xx=0.1;*:slow=0.1'")
    p.add_argument(
        "--latency",
        default=None,
        help="per-request latency in ms per host, e.g. 'allegro-api=150,wb-statistics=400' or '*=150' (default off)",
    )
    p.add_argument("--no-rate-limits", action="store_true", help="switch rate limits off (benchmarks)")
    p.add_argument("--rate-limit-scale", type=float, default=1.0)
    p.add_argument("--auto-approve", action="store_true", help="approve Allegro device codes at once (demo)")
    p.add_argument(
        "--wb-statistics-refresh",
        type=float,
        default=1800.0,
        help="WB statistics serve what their last refresh saw, every this many seconds (0: at once)",
    )
    p.add_argument("--wb-feed-drift", type=float, default=0.0, help="share of order-feed rows missing a field")
    p.add_argument("--row-cap", type=int, default=80_000, help="WB statistics rows per response")
    p.add_argument(
        "--allegro-token-requests",
        type=_positive_int,
        default=None,
        metavar="N",
        help="Allegro access tokens die after N API requests each (default: only after 12 h)",
    )
    p.add_argument(
        "--cache-responses",
        action="store_true",
        help="answer a repeated WB statistics read or Allegro listing with the bytes generated the first time "
        "(benchmarks; needs --speed 0)",
    )
    p.add_argument(
        "--start", default=None, help="sandbox start time, ISO 8601 (default: now, so live data looks current)"
    )


def _positive_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {raw!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def settings_lines(base_url: str, credentials: dict[str, str]) -> list[str]:
    """The KEY=VALUE lines `run` prints."""
    base = base_url.rstrip("/")
    lines = [f"{URL_KEYS[h]}={base}/{h}" for h in HOSTS]
    lines += [f"{k}={v}" for k, v in credentials.items()]
    return lines


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from sandbox.app import create_app
    from sandbox.config import SandboxConfig
    from sandbox.operator import credentials_env

    try:
        parse_faults(args.faults)
        parse_latency(args.latency)
        start = datetime.fromisoformat(args.start) if args.start else datetime.now(UTC).replace(microsecond=0)
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        config = SandboxConfig(
            start=start,
            seed=args.seed,
            scenario=args.scenario,
            speed=args.speed,
            faults=args.faults,
            latency=args.latency,
            rate_limits=not args.no_rate_limits,
            rate_limit_scale=args.rate_limit_scale,
            auto_approve=args.auto_approve,
            wb_row_cap=args.row_cap,
            wb_statistics_refresh_s=args.wb_statistics_refresh,
            wb_feed_drift=args.wb_feed_drift,
            allegro_token_requests=args.allegro_token_requests,
            cache_responses=args.cache_responses,
        )
        app = create_app(config)
    except (FaultSpecError, LatencySpecError, ValueError) as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return 2
    shown_host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    for line in settings_lines(f"http://{shown_host}:{args.port}", credentials_env(app.state.world)):
        print(line)
    sys.stdout.flush()
    logging.getLogger("uvicorn.error").addFilter(_quiet_injected_resets)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    finally:
        app.state.world.responses.close()
    return 0


def _quiet_injected_resets(record: logging.LogRecord) -> bool:
    """Injected connection resets are the point, not server errors: no traceback."""
    from sandbox.middleware import ConnectionDropped

    exc = record.exc_info[1] if record.exc_info else None
    return not isinstance(exc, ConnectionDropped)


def _post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _operator(url: str, path: str, body: dict[str, Any]) -> int:
    try:
        status, data = _post(url.rstrip("/") + path, body)
    except urllib.error.URLError as exc:
        print(f"sandbox not reachable at {url}: {exc.reason}", file=sys.stderr)
        return 2
    print(json.dumps(data, ensure_ascii=False))
    return 0 if status == 200 else 1


def approve(args: argparse.Namespace) -> int:
    body = {"code": args.code}
    if args.shop:
        body["shop"] = args.shop
    return _operator(args.url, "/_sandbox/allegro/device/approve", body)


def deny(args: argparse.Namespace) -> int:
    return _operator(args.url, "/_sandbox/allegro/device/deny", {"code": args.code})


def advance(args: argparse.Namespace) -> int:
    return _operator(args.url, "/_sandbox/clock/advance", {"seconds": args.seconds})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sellerpulse")
    subparsers = parser.add_subparsers(dest="command", required=True)
    register(subparsers)
    args = parser.parse_args(["sandbox", *(argv if argv is not None else sys.argv[1:])])
    return int(args.func(args))
