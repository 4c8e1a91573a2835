"""Benchmarks and the recall evaluation (results: bench/results/, docs/benchmarks.md)."""
