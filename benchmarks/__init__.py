"""Benchmarks of dlhw: run with `python -m benchmarks.run` (see README)."""
