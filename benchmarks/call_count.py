"""Python calls per training iteration: a deterministic measure of the runner's per-iteration work.

Wall-clock ratios (``overhead.py``) move with whatever else the machine does; the number of Python
function calls the loop makes does not. This trains ``typedrunner.testing.toy_config`` for two
lengths under ``cProfile`` and prints the calls per extra iteration (validation every epoch included),
with and without a checkpoint every epoch. Run it on two trees to compare them::

    OMP_NUM_THREADS=1 python benchmarks/call_count.py
    OMP_NUM_THREADS=1 python benchmarks/call_count.py --profile   # and the top of the 6-epoch run's profile
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cProfile
import pstats
import sys
import tempfile

import torch

from typedrunner.config import DefaultHooks, Randomness
from typedrunner.runner import Runner
from typedrunner.testing import toy_config


def calls_of_a_run(epochs: int, checkpoints: bool, show: int = 0) -> tuple[int, int]:
    """(iterations, Python calls) of ``train()`` on a checked toy runner; prints the top ``show``
    functions of its profile by cumulative time."""
    hooks = DefaultHooks() if checkpoints else DefaultHooks(checkpoint=None)
    with tempfile.TemporaryDirectory() as work_dir:
        runner = Runner(
            toy_config(
                work_dir, max_epochs=epochs, randomness=Randomness(seed=0), default_hooks=hooks, log_level="WARNING"
            )
        )
        runner.check()
        profile = cProfile.Profile()
        profile.enable()
        runner.train(check=False)
        profile.disable()
        stats = pstats.Stats(profile)
        if show:
            stats.sort_stats("cumulative").print_stats(show)
        return runner.iter, stats.total_calls  # type: ignore[attr-defined]


def main() -> None:
    torch.set_num_threads(1)
    calls_of_a_run(1, True)  # warm up: first-call imports are not the loop's work
    for checkpoints in (False, True):
        (short_iters, short_calls), (long_iters, long_calls) = (calls_of_a_run(n, checkpoints) for n in (2, 6))
        per_iter = (long_calls - short_calls) / (long_iters - short_iters)
        label = "a checkpoint every epoch" if checkpoints else "no checkpoints"
        print(f"{label}: {per_iter:.1f} Python calls per iteration ({short_iters} -> {long_iters} iterations)")
    if "--profile" in sys.argv:
        calls_of_a_run(6, False, show=30)


if __name__ == "__main__":
    main()
