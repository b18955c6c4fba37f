"""Benchmarks: `python -m bench.run`. Not part of the test suite."""
