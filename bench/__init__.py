"""Benchmarks of the pipeline against the raw client limit, on the real broker."""
