"""Alembic environment: runs the migrations on the connection `consumers.store` passes
in (config attribute "connection"), or on the URL of the `sqlalchemy.url` option."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from onestop.consumers.schema import metadata

config = context.config


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as connection:
        _migrate(connection)
    engine.dispose()


def _migrate(connection: object) -> None:
    # SQLite cannot alter columns in place; batch mode rebuilds its tables instead.
    context.configure(
        connection=connection, target_metadata=metadata, render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
