"""Tiny random models and data for tests and quick runs (no downloads)."""
