"""Speed: the runner's per-iteration work does not grow with the iteration count (issue 14).

``benchmarks/constant_cost.py`` at iterations 200 and 2,000 (the benchmark's own default is 1,000
and 100,000): the Python calls of 100 whole iterations (data, step, every hook, 10 log points) are
equal, the objects the garbage collector tracks do not pile up, and Python's heap grows by less than
one float kept per iteration would take (MMEngine's history buffers append one per iteration).
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.constant_cost import measure

FLOAT_IN_A_LIST = 32
"""Bytes one float kept in a list takes: the float object (24) and its slot (8)."""


def test_per_iteration_work_is_the_same_at_200_and_2000(tmp_path: Path) -> None:
    early, late = measure(tmp_path, [200, 2000])
    assert (early.start, late.start) == (200, 2000)
    assert early.calls_per_iter > 100  # the window really profiled the loop
    assert late.calls_per_iter == early.calls_per_iter
    assert abs(late.gc_objects - early.gc_objects) <= 20, (early, late)
    iterations = late.start - early.start
    assert late.heap_bytes - early.heap_bytes < iterations * FLOAT_IN_A_LIST * 3 // 4, (early, late)
