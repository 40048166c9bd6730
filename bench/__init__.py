"""Benchmarks, each runnable as one command; results go to docs/benchmarks.md."""
