"""Benchmarks run by `make bench` (see README: Benchmarks)."""
