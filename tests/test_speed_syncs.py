"""Speed: typedrunner reads nothing back from the device between log points (DESIGN.md section 4).

A host-device sync is a call that needs a tensor's value on the host: ``.item()``, ``.cpu()``,
``.tolist()``, ``.numpy()``, ``bool(t)``, ``float(t)``, ``int(t)``, ``operator.index(t)``. These tests
replace those methods of ``torch.Tensor`` with counting shims and train real runs on CPU. A call is
typedrunner's when the nearest frame outside torch that made it is in the ``typedrunner`` package (so
a torch function typedrunner calls that syncs inside counts too, and the user's model or metric code
does not). Between log points the count must be zero; at log points it must not be (the logger and
the non-finite guard read there), which is what shows the shims see typedrunner's reads at all.

The GPU proof of the same promise is ``benchmarks/gpu_sync_check.py`` (``set_sync_debug_mode("error")``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor

import typedrunner
from typedrunner import lazy
from typedrunner.config import (
    SGD,
    CheckpointHook,
    ClipGrad,
    DataLoader,
    DefaultHooks,
    DefaultSampler,
    IterBasedTrainLoop,
    LinearLR,
    LoggerHook,
    OptimWrapper,
)
from typedrunner.parts.hooks.base import Hook, RunView
from typedrunner.runner import Runner
from typedrunner.testing import ToyDataset, toy_config

READS = ("item", "cpu", "tolist", "numpy", "__bool__", "__float__", "__int__", "__index__")
"""The ``Tensor`` methods that bring a value to the host."""

TORCH_DIR = str(Path(torch.__file__).parent)
PACKAGE_DIR = str(Path(typedrunner.__file__).parent)

LOG_INTERVAL = 10
ITERS = 40
"""One epoch of 40 iterations (640 samples, batches of 16): log points at 10, 20, 30, 40."""


class HostReads:
    """Counting shims on ``torch.Tensor``'s host reads; keeps ``(method, file:line)`` of each of typedrunner's."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[str, str]] = []
        for name in READS:
            monkeypatch.setattr(torch.Tensor, name, self._shim(name, getattr(torch.Tensor, name)))

    def _shim(self, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def counted(tensor: Tensor, *args: Any, **kwargs: Any) -> Any:
            frame = sys._getframe(1)
            while frame.f_back is not None and frame.f_code.co_filename.startswith(TORCH_DIR):
                frame = frame.f_back
            where = frame.f_code.co_filename
            if where.startswith(PACKAGE_DIR):
                self.calls.append((name, f"{Path(where).relative_to(PACKAGE_DIR)}:{frame.f_lineno}"))
            return original(tensor, *args, **kwargs)

        return counted


class PerIteration(Hook):
    """After every other hook of each iteration: typedrunner's host reads since the previous one."""

    priority = "LOWEST"

    def __init__(self, reads: HostReads) -> None:
        self.reads = reads
        self.seen = 0
        self.by_iter: dict[int, list[tuple[str, str]]] = {}

    def after_train_iter(
        self, runner: RunView, batch_idx: int, data_batch: Any = None, outputs: Mapping[str, Tensor] | None = None
    ) -> None:
        self.by_iter[runner.iter + 1] = self.reads.calls[self.seen :]
        self.seen = len(self.reads.calls)


def _config(work_dir: Path, **overrides: Any) -> Any:
    values: dict[str, Any] = dict(
        train_dataloader=DataLoader(
            dataset=lazy(ToyDataset, size=16 * ITERS, seed=0), sampler=DefaultSampler(shuffle=True), batch_size=16
        ),
        default_hooks=DefaultHooks(logger=LoggerHook(interval=LOG_INTERVAL)),
        log_level="WARNING",
    )
    values.update(overrides)
    return toy_config(work_dir, max_epochs=1, **values)


EVERYTHING_ON = dict(
    # the hot path with every per-iteration part in play: clipping by norm (it keeps the norm on the
    # device for the logger), a per-iteration schedule, iteration checkpoints at the log points, an
    # iteration-based loop cycling the data
    train_cfg=IterBasedTrainLoop(max_iters=ITERS, val_interval=ITERS),
    optim_wrapper=OptimWrapper(optimizer=SGD(lr=0.1), clip_grad=ClipGrad(max_norm=1.0)),
    param_scheduler=[LinearLR(by_epoch=False, end=ITERS)],
    default_hooks=DefaultHooks(
        logger=LoggerHook(interval=LOG_INTERVAL), checkpoint=CheckpointHook(by_epoch=False, interval=LOG_INTERVAL)
    ),
)


def _train(work_dir: Path, monkeypatch: pytest.MonkeyPatch, **overrides: Any) -> dict[int, list[tuple[str, str]]]:
    runner = Runner(_config(work_dir, **overrides))
    runner.check()  # the probe reads values on purpose; it is not the loop
    reads = HostReads(monkeypatch)
    per_iteration = PerIteration(reads)
    runner.register_hook(per_iteration)
    runner.train(check=False)
    assert runner.iter == ITERS
    return per_iteration.by_iter


@pytest.mark.parametrize("overrides", [{}, EVERYTHING_ON], ids=["seed-defaults", "everything-on"])
def test_no_host_reads_between_log_points(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, overrides: Any) -> None:
    by_iter = _train(tmp_path, monkeypatch, **overrides)
    log_points = set(range(LOG_INTERVAL, ITERS + 1, LOG_INTERVAL))
    # Iteration 1 also holds the run's start (the sampler draws its epoch order); every later one is
    # only the hot loop: the data guard, train_step, update_params, the guard, the hooks.
    between = {i: calls for i, calls in by_iter.items() if i > 1 and i not in log_points}
    assert len(between) == ITERS - 1 - len(log_points)
    assert {i: calls for i, calls in between.items() if calls} == {}
    # At each log point the logger's read and the non-finite guard's one read are seen.
    for i in log_points:
        sites = {where.split(":")[0] for _, where in by_iter[i]}
        assert {"parts/hooks/builtin.py", "engine/guards.py"} <= sites, (i, by_iter[i])


def test_nonfinite_skip_reads_the_loss_every_iteration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``nonfinite: skip`` decides each step on the host, as the README says: exactly one read per
    iteration, in the optimizer wrapper (and the shims see reads on the hot path)."""
    skip = OptimWrapper(optimizer=SGD(lr=0.1), nonfinite="skip")
    by_iter = _train(tmp_path, monkeypatch, optim_wrapper=skip)
    log_points = set(range(LOG_INTERVAL, ITERS + 1, LOG_INTERVAL))
    between = [calls for i, calls in by_iter.items() if i > 1 and i not in log_points]
    assert all(
        [(name, where.split(":")[0]) for name, where in calls] == [("__bool__", "parts/optim.py")] for calls in between
    ), between


def test_gpu_sync_check_schedule(tmp_path: Path) -> None:
    """``benchmarks/gpu_sync_check.py`` trains the seed here too (on CPU), with torch's mode setter
    replaced by a recorder: every iteration but the first and the log points is put under ``error``,
    and the mode is back to ``default`` at the end."""
    from benchmarks import gpu_sync_check

    modes: list[str] = []
    checked = gpu_sync_check.run(tmp_path, modes.append)
    iters, interval = gpu_sync_check.ITERS, gpu_sync_check.LOG_INTERVAL
    assert checked == [i for i in range(2, iters + 1) if i % interval != 0]
    assert len(checked) == 89
    assert modes.count("error") == len(checked) and modes[-1] == "default"
