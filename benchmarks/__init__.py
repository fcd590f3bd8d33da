"""Benchmarks: typedrunner against hand-written PyTorch, measured in the same run."""
