"""Persistence: connections, portable SQL, the schema and its migrations."""

from kanban_core.storage.database import Database, Dialect, Transaction
from kanban_core.storage.sql import Query

__all__ = ["Database", "Dialect", "Query", "Transaction"]
