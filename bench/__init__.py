"""Benchmarks run by `make bench` (tools/bench.py): every module here with a `main()`."""
