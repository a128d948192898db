"""Alembic's environment for the records database, run by :mod:`sopcoach.records.schema`.

Never run by hand and no ``alembic.ini``: :func:`sopcoach.records.schema.upgrade` builds the
Alembic config in code and hands over an open connection (``config.attributes["connection"]``) in
a transaction, so the whole upgrade commits or rolls back as one. ``render_as_batch`` makes
``alembic revision --autogenerate`` write SQLite-safe ``batch_alter_table`` blocks.
"""
from __future__ import annotations

from alembic import context

from sopcoach.records.models import Base

connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError("the records migrations run through `sopcoach db upgrade` (an open connection), not offline")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True,
                  compare_type=True)
with context.begin_transaction():
    context.run_migrations()
