"""Alembic environment: fleetbatch passes an open connection in ``attributes``."""

from alembic import context

from fleetbatch.store.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
