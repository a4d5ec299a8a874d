"""API polling benchmark: ``uv run python -m benchmarks.api``."""
