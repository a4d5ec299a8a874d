"""Connector parse benchmarks: ``uv run python -m benchmarks.connectors``."""
