"""``relief db``: apply and inspect the warehouse's schema migrations.

relief db upgrade [--warehouse URL] [--revision REV]
relief db current [--warehouse URL]
relief db history
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from pipeline.config import from_env

WAREHOUSE_HELP = "SQLAlchemy URL (default $RELIEF_WAREHOUSE_URL or sqlite:///relief_warehouse.db)"

Handler = Callable[[argparse.Namespace], int]


def add_commands(sub: argparse._SubParsersAction) -> dict[str, Handler]:
    """Add ``db`` with its sub-commands to ``relief``'s sub-parsers; returns its handler."""
    db = sub.add_parser(
        "db",
        help="apply or inspect warehouse schema migrations (Alembic)",
        description="The warehouse schema is versioned with Alembic migrations shipped in "
        "pipeline/migrations. Every run applies them first; these commands do it by hand.",
        epilog="examples:\n"
        "  relief db upgrade --warehouse postgresql://postgres@127.0.0.1/relief\n"
        "  relief db current\n"
        "  relief db history",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    upgrade = actions.add_parser(
        "upgrade",
        help="migrate the warehouse to the newest revision (a no-op when already there)",
        description="Create or migrate the warehouse: schemas, tables, researcher views and, "
        "on PostgreSQL, the read-only relief_researcher role. Safe to repeat.",
    )
    upgrade.add_argument("--warehouse", help=WAREHOUSE_HELP)
    upgrade.add_argument("--revision", default="head", help="target revision (default head)")
    current = actions.add_parser(
        "current",
        help="print the warehouse's revision",
        description="Print the revision recorded in the warehouse's alembic_version table.",
    )
    current.add_argument("--warehouse", help=WAREHOUSE_HELP)
    actions.add_parser(
        "history",
        help="list every migration, oldest first",
        description="List the migrations shipped with this version of relief, oldest first.",
    )
    return {"db": cmd_db}


def cmd_db(args: argparse.Namespace) -> int:
    from pipeline import migrate

    if args.db_command == "history":
        newest = migrate.head()
        for revision, down, doc in migrate.history():
            mark = " (head)" if revision == newest else ""
            print(f"{down or '<base>'} -> {revision}{mark}: {doc}")
        return 0
    url = from_env(warehouse_url=args.warehouse, demo=True).warehouse_url
    if args.db_command == "upgrade":
        before = migrate.current(url)
        after = migrate.upgrade(url, args.revision)
        if before == after:
            print(f"warehouse already at revision {after}")
        else:
            print(f"warehouse upgraded: {before or '<empty>'} -> {after}")
        return 0
    revision = migrate.current(url)
    head = migrate.head()
    if revision is None:
        print("warehouse not migrated yet: run `relief db upgrade`")
    else:
        print(f"{revision}{' (head)' if revision == head else f' (head is {head})'}")
    return 0
