"""Benchmarks run by `make bench`: each `bench/<name>.py` with a `main()` is one."""
