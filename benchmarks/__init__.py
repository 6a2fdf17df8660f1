"""Benchmarks of the kanban kernel on SQLite and PostgreSQL: ``python -m benchmarks [--quick]``."""
