"""`sellerpulse db ...`: create and inspect the schema."""

from __future__ import annotations

import argparse

from sellerpulse.errors import Failure
from storage import migrate
from storage.db import get_engine, get_target


def _upgrade(args: argparse.Namespace) -> int:
    target = get_target()
    migrate.upgrade(get_engine(), args.revision)
    status = migrate.schema_status(get_engine())
    print(f"database: {target.describe()}")
    print(f"schema:   {status.current} (head {status.head})")
    return 0


def _status(args: argparse.Namespace) -> int:
    target = get_target()
    status = migrate.schema_status(get_engine())
    print(f"database: {target.describe()}")
    print(f"embedded: {'yes' if target.embedded else 'no'}")
    print(f"current:  {status.current or '(empty database)'}")
    print(f"head:     {status.head}")
    if not status.at_head:
        print("the schema is not at head: run `sellerpulse db upgrade`")
        return 1
    print("the schema is up to date")
    return 0


def _query(args: argparse.Namespace) -> int:
    """Read-only: the transaction is rolled back whatever the statement was.

    The SQL goes to psycopg as it is, with no parameters, so a `%` (`LIKE 'a%'`) is just a
    character; an error PostgreSQL reports (syntax, a write refused) is one line, exit 1.
    """
    import psycopg

    engine = get_engine()
    with engine.connect() as conn:
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute("SET TRANSACTION READ ONLY")
            cursor.execute(args.sql.encode())
        except psycopg.Error as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise Failure(f"the query failed: {first}") from None
        finally:
            conn.rollback()
        if cursor.description is not None:
            print("\t".join(col.name for col in cursor.description))
            for row in cursor:
                print("\t".join("" if v is None else str(v) for v in row))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    db = sub.add_parser("db", help="database schema: upgrade, status")
    actions = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    up = actions.add_parser("upgrade", help="apply migrations up to head (creates the embedded database if needed)")
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(func=_upgrade)
    st = actions.add_parser("status", help="current vs head revision, and which database")
    st.set_defaults(func=_status)
    q = actions.add_parser("query", help="run a read-only SQL query and print the rows (tab separated)")
    q.add_argument("sql")
    q.set_defaults(func=_query)
