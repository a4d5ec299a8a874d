"""`sellerpulse api` (serve the API with uvicorn) and `sellerpulse api-keys create|list|revoke`."""

from __future__ import annotations

import argparse

from sellerpulse.settings import get_settings
from storage import apikeys
from storage.db import get_engine, session_scope
from storage.migrate import require_head


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = get_settings()
    require_head(get_engine())  # refuse to serve a schema this code does not match
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=args.host or settings.api_host,
        port=args.port or settings.api_port,
        workers=args.workers,
        log_level=settings.sellerpulse_log_level.lower(),
        # Request lines carry query strings only (telegram ids, cursors): never a secret.
        access_log=args.access_log,
    )
    return 0


def _create(args: argparse.Namespace) -> int:
    require_head(get_engine())
    with session_scope() as session:
        new = apikeys.create_key(session, name=args.name)
        key_id = new.key.id
    print(f"API key {key_id} ({args.name}), shown only this once; store it now:")
    print(new.secret)
    return 0


def _list(args: argparse.Namespace) -> int:
    require_head(get_engine())
    with session_scope() as session:
        keys = apikeys.list_keys(session)
        print("id\tname\tprefix\tcreated\tlast used\trevoked")
        for k in keys:
            used = k.last_used_at.isoformat(timespec="seconds") if k.last_used_at else "-"
            revoked = k.revoked_at.isoformat(timespec="seconds") if k.revoked_at else "-"
            print(f"{k.id}\t{k.name}\t{k.prefix}…\t{k.created_at.isoformat(timespec='seconds')}\t{used}\t{revoked}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    require_head(get_engine())
    with session_scope() as session:
        done = apikeys.revoke_key(session, key_id=args.id)
    print(f"API key {args.id} revoked" if done else f"no active API key {args.id}")
    return 0 if done else 1


def register(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser("api", help="serve the HTTP API for the bot (uvicorn)")
    serve.add_argument("--host", help="default: API_HOST (127.0.0.1)")
    serve.add_argument("--port", type=int, help="default: API_PORT (8000)")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes (default 1; 2 on a 2-core machine under a busy bot: see benchmarks/api)",
    )
    serve.add_argument("--access-log", action="store_true", help="log every request line")
    serve.set_defaults(func=_serve)

    keys = sub.add_parser("api-keys", help="API keys for the bot: create, list, revoke")
    actions = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="create a key and print it once")
    create.add_argument("--name", required=True)
    create.set_defaults(func=_create)
    actions.add_parser("list", help="list keys (never the keys themselves)").set_defaults(func=_list)
    revoke = actions.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("id", type=int)
    revoke.set_defaults(func=_revoke)
