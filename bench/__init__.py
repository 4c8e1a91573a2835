"""Benchmarks and the recall evaluation (results in bench/results/, summary in docs/benchmarks.md)."""
