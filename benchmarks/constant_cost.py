"""Constant per-iteration cost: the runner's work at iteration 100,000 equals its work at 1,000.

MMEngine's history buffers grow with ``np.append`` and its overhead grows from 17 to 467 us/iter over
100k iterations. Wall-clock time on a shared machine cannot show a difference that small reliably;
Python calls can (``call_count.py``'s measure, load-independent). This trains the toy model with an
iteration-based loop (batches of 16 cycling 64 samples: a new data pass every 4 iterations) with the
default hooks, logging every 10 iterations, and counts the Python calls of ``WINDOW`` whole iterations
(data loading, the step, every hook) starting at each measured iteration under ``cProfile``, plus the
number of objects the garbage collector tracks there. Run::

    OMP_NUM_THREADS=1 python benchmarks/constant_cost.py            # iterations 1,000 and 100,000
    OMP_NUM_THREADS=1 python benchmarks/constant_cost.py 200 2000   # any iterations (multiples of 20)

``tests/test_speed_constant_cost.py`` runs it at 200 and 2,000.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cProfile
import gc
import pstats
import tempfile
import time
import tracemalloc
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from typedrunner.config import CheckpointHook, DefaultHooks, IterBasedTrainLoop, LoggerHook, Randomness
from typedrunner.parts.hooks.base import Hook, RunView
from typedrunner.runner import Runner
from typedrunner.testing import toy_config

WINDOW = 100
"""Iterations measured at each point: a multiple of the log interval (10) and the data pass (4)."""


@dataclass
class Point:
    """What was measured over ``WINDOW`` iterations starting at ``start`` (counted from 0)."""

    start: int
    calls_per_iter: float
    gc_objects: int
    heap_bytes: int
    """Python's allocated memory (``tracemalloc``, traced from the start of training) at the window's end."""


class CallWindows(Hook):
    """Profiles ``WINDOW`` whole iterations from each start: from the end of the previous iteration's
    hooks (this hook runs last) to the end of the last one's."""

    priority = "LOWEST"

    def before_train(self, runner: RunView) -> None:
        tracemalloc.start()

    def after_train(self, runner: RunView) -> None:
        tracemalloc.stop()

    def __init__(self, starts: list[int]) -> None:
        self.starts = set(starts)
        self.points: list[Point] = []
        self._profile: cProfile.Profile | None = None
        self._start = 0

    def after_train_iter(
        self, runner: RunView, batch_idx: int, data_batch: Any = None, outputs: Mapping[str, Tensor] | None = None
    ) -> None:
        done = runner.iter + 1
        if self._profile is not None and done == self._start + WINDOW:
            self._profile.disable()
            gc.enable()
            calls: int = pstats.Stats(self._profile).total_calls  # type: ignore[attr-defined]
            gc.collect()
            heap = tracemalloc.get_traced_memory()[0]
            self.points.append(Point(self._start, calls / WINDOW, len(gc.get_objects()), heap))
            self._profile = None
        if done in self.starts:
            self._start = done
            # Garbage left by whatever ran earlier in this process (other tests' runners) would be
            # collected at a moment the allocator picks, running its finalizers inside the window.
            # Collect it now and hold collection for the window: what is counted is this loop's work.
            gc.collect()
            gc.disable()
            self._profile = cProfile.Profile()
            self._profile.enable()


def measure(work_dir: str | Path, starts: list[int]) -> list[Point]:
    """Train until the last window ends; the calls per iteration in each window."""
    if any(start % 20 for start in starts):
        raise ValueError("start each window on a multiple of 20 (the log interval and the data pass align)")
    max_iters = max(starts) + WINDOW + 20  # the end of training (its checkpoint) outside every window
    cfg = toy_config(
        work_dir,
        train_cfg=IterBasedTrainLoop(max_iters=max_iters, val_interval=max_iters),
        default_hooks=DefaultHooks(
            logger=LoggerHook(interval=10), checkpoint=CheckpointHook(by_epoch=False, interval=max_iters)
        ),
        randomness=Randomness(seed=0),
        log_level="WARNING",
    )
    runner = Runner(cfg)
    windows = CallWindows(starts)
    runner.register_hook(windows)
    runner.train()
    return windows.points


def main() -> None:
    torch.set_num_threads(1)
    starts = [int(a) for a in sys.argv[1:]] or [1_000, 100_000]
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as work_dir:
        points = measure(work_dir, starts)
    for point in points:
        print(
            f"iterations {point.start + 1:,}-{point.start + WINDOW:,}: {point.calls_per_iter:.2f} Python calls per "
            f"iteration, {point.gc_objects:,} objects tracked by the GC, Python heap {point.heap_bytes:,} bytes"
        )
    first, last = points[0], points[-1]
    same = first.calls_per_iter == last.calls_per_iter
    print(
        f"calls per iteration at {last.start:,} vs {first.start:,}: "
        f"{'equal' if same else f'{last.calls_per_iter - first.calls_per_iter:+.2f}'}; "
        f"GC-tracked objects {last.gc_objects - first.gc_objects:+,}, Python heap {last.heap_bytes - first.heap_bytes:+,} "
        f"bytes ({time.perf_counter() - began:.0f} s)"
    )


if __name__ == "__main__":
    main()
