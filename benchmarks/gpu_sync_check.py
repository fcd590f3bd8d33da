"""Zero host-device syncs per iteration outside log points, proven on a GPU.

Run from the repo root on a machine with CUDA:  OMP_NUM_THREADS=1 python benchmarks/gpu_sync_check.py

Trains the seed MLP (pinned memory, two workers, Adam) for 100 iterations on CUDA, with
``torch.cuda.set_sync_debug_mode("error")`` in force for every iteration except the first (CUDA's
own warm-up) and the log points (every 10th: the logger and the non-finite guard read values there,
on purpose). "An iteration" here runs from the end of the previous one's hooks to the end of its own:
loading the batch, copying it to the device, the forward and backward passes, the optimizer step, the
non-finite guard and every hook. Any synchronising call in that stretch (``.item()``, a blocking copy,
``bool(tensor)``, ``torch.cuda.synchronize``) raises, and the script prints where and exits 1.

Without CUDA it says so and exits 0: nothing is checked. ``tests/test_speed_syncs.py`` counts the same
reads on CPU, and runs this script's schedule there with the mode setter recorded instead.
"""

from __future__ import annotations

import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from torch import Tensor

from examples.train_python_config import seed_config
from typedrunner.config import CheckpointHook, DefaultHooks, IterBasedTrainLoop, LoggerHook, Randomness
from typedrunner.parts.hooks.base import Hook, RunView
from typedrunner.runner import Runner

ITERS = 100
LOG_INTERVAL = 10

SetMode = Callable[[str], None]


class SyncDebugWindows(Hook):
    """At the end of each iteration (after every other hook), sets the sync debug mode for the next
    one: ``error`` unless it is a log point, ``default`` for a log point and after the last."""

    priority = "LOWEST"

    def __init__(self, set_mode: SetMode, interval: int, max_iters: int) -> None:
        self.set_mode = set_mode
        self.interval = interval
        self.max_iters = max_iters
        self.checked: list[int] = []
        """The iterations (counted from 1) that ran under ``error``."""
        self._mode = "default"

    def after_train_iter(
        self, runner: RunView, batch_idx: int, data_batch: Any = None, outputs: Mapping[str, Tensor] | None = None
    ) -> None:
        done = runner.iter + 1
        if self._mode == "error":
            self.checked.append(done)
        upcoming = done + 1
        self._mode = "default" if upcoming > self.max_iters or upcoming % self.interval == 0 else "error"
        self.set_mode(self._mode)


def run(work_dir: Path, set_mode: SetMode) -> list[int]:
    """Train the seed for ``ITERS`` iterations under ``SyncDebugWindows``; the iterations checked."""
    cfg = seed_config(str(work_dir)).model_copy(
        update={
            "train_cfg": IterBasedTrainLoop(max_iters=ITERS, val_interval=ITERS),
            "val_dataloader": None,
            "val_cfg": None,
            "val_evaluator": None,
            "param_scheduler": [],
            "default_hooks": DefaultHooks(
                logger=LoggerHook(interval=LOG_INTERVAL), checkpoint=CheckpointHook(by_epoch=False, interval=ITERS)
            ),
            "randomness": Randomness(seed=0),
            "log_level": "WARNING",
        }
    )
    runner = Runner(cfg)
    windows = SyncDebugWindows(set_mode, LOG_INTERVAL, ITERS)
    runner.register_hook(windows)
    try:
        runner.train()
    finally:
        set_mode("default")
    if runner.iter != ITERS:
        raise AssertionError(f"trained {runner.iter} iterations, not {ITERS}")
    return windows.checked


def main() -> int:
    if not torch.cuda.is_available():
        print("gpu_sync_check: CUDA is not available on this machine; nothing was checked (run it on a GPU)")
        return 0
    with tempfile.TemporaryDirectory() as work:
        try:
            checked = run(Path(work), torch.cuda.set_sync_debug_mode)
        except RuntimeError as e:
            traceback.print_exc()
            print(f"gpu_sync_check: FAILED, a host-device sync outside the log points: {e}")
            return 1
    print(
        f"gpu_sync_check: OK on {torch.cuda.get_device_name()}: {len(checked)} of {ITERS} iterations ran under "
        f'torch.cuda.set_sync_debug_mode("error") (all but the first and the log points every {LOG_INTERVAL}) '
        "without a host-device sync"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
