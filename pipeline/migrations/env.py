"""Alembic environment: runs the migrations on the connection ``pipeline.migrate`` hands over.

``pipeline.migrate`` opens one connection (and, on PostgreSQL, takes an advisory lock)
and passes it in ``config.attributes["connection"]``; every migration then runs in that
one transaction. Used from the ``alembic`` command line instead, the URL comes from the
``sqlalchemy.url`` option (``alembic -x`` is not needed).

``target_metadata`` is the current ``build_metadata(dialect)``, so
``alembic revision --autogenerate`` proposes the migration a table change needs.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from pipeline.migrate import comparison_options

config = context.config


def run_migrations(connection: Connection) -> None:
    context.configure(connection=connection, **comparison_options(connection.dialect.name))
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("relief's migrations run online only: use `relief db upgrade`")

_connection = config.attributes.get("connection")
if _connection is not None:
    run_migrations(_connection)
else:
    _engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with _engine.begin() as _own:
        run_migrations(_own)
    _engine.dispose()
