"""Reliability of data loading: a corrupt sample and a dead dataloader worker each stop the run with a
clear message naming them, and leave the last checkpoint intact and resumable.
"""

from __future__ import annotations

import gc
import os
import signal
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from torch import Tensor
from torch.utils.data import get_worker_info

from tests.helpers import read_checkpoint, resolved_pointer
from typedrunner import lazy
from typedrunner.config import (
    CheckpointHook,
    DataLoader,
    DefaultHooks,
    DefaultSampler,
    RunnerConfig,
)
from typedrunner.hooks import Hook, RunView
from typedrunner.runner import Runner
from typedrunner.testing import ToyDataset, toy_config


# ----------------------------------------------------------------------------------------------
# Data loading failures
# ----------------------------------------------------------------------------------------------
class Bad(ToyDataset):
    """Sample 777 cannot be read."""

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        if index == 777:
            raise ValueError("corrupt sample")
        return super().__getitem__(index)


class KillsItsWorker(ToyDataset):
    """Reading sample 777 in a dataloader worker kills that worker (as the OOM killer would), once
    the file ``go`` exists: the test decides what the main process is doing at that moment."""

    def __init__(self, size: int = 1024, go: str = "") -> None:
        super().__init__(size)
        self.go = go

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        if index == 777 and get_worker_info() is not None:
            deadline = time.monotonic() + 60
            while not os.path.exists(self.go) and time.monotonic() < deadline:
                time.sleep(0.002)
            time.sleep(0.1)  # margin: the main process is where the test put it
            os.kill(os.getpid(), signal.SIGKILL)
        return super().__getitem__(index)


class Go(Hook):
    """Creates the file ``go`` once iteration ``at`` is done; then stays ``busy`` seconds in this
    hook (standing for a long training step) before training goes on."""

    def __init__(self, go: Path, at: int, busy: float = 0.0) -> None:
        self.go = go
        self.at = at
        self.busy = busy

    def after_train_iter(
        self, runner: RunView, batch_idx: int, data_batch: Any = None, outputs: Mapping[str, Tensor] | None = None
    ) -> None:
        if runner.iter + 1 == self.at:
            self.go.touch()
            deadline = time.monotonic() + self.busy
            while time.monotonic() < deadline:
                time.sleep(0.01)


def _data_config(work_dir: Path, dataset: Any, num_workers: int, **overrides: Any) -> RunnerConfig:
    """1024 samples in order, batches of 16: sample 777 is in iteration 49; a checkpoint every 10."""
    return toy_config(
        work_dir,
        max_epochs=1,
        train_dataloader=DataLoader(
            dataset=dataset, sampler=DefaultSampler(shuffle=False), batch_size=16, num_workers=num_workers
        ),
        default_hooks=DefaultHooks(checkpoint=CheckpointHook(by_epoch=False, interval=10)),
        log_level="WARNING",
        **overrides,
    )


def _train_and_release(runner: Runner) -> tuple[str, str]:
    """Train; return what it raised (type name, message), with every reference to the failed
    dataloader dropped and collected: a dead worker's pid left registered with torch's SIGCHLD
    handler would make any later child process exit raise in whatever code is running."""
    raised = ("nothing", "")
    try:
        runner.train()
    except Exception as e:
        raised = (type(e).__name__, str(e))
        error: BaseException | None = e
        while error is not None:  # the frames hold the dataloader iterator: let it shut down now
            traceback.clear_frames(error.__traceback__)
            error = error.__cause__ or error.__context__
    gc.collect()
    return raised


def _assert_last_checkpoint_intact_and_resumable(work_dir: Path) -> None:
    assert sorted(p.name for p in work_dir.glob("*.pth")) == [f"iter_{i}.pth" for i in (10, 20, 30, 40)]
    assert resolved_pointer(work_dir) == work_dir / "iter_40.pth"
    assert read_checkpoint(work_dir / "iter_40.pth")["meta"]["iter"] == 40
    # the data fixed, the run resumes from it and finishes
    fixed = Runner(_data_config(work_dir, lazy(ToyDataset, size=1024), 0, resume=True))
    assert fixed.iter == 40
    fixed.train()
    assert fixed.iter == 64


@pytest.mark.parametrize("num_workers", [0, 2], ids=["in-process", "in-a-worker"])
def test_a_sample_that_raises_is_named_and_the_last_checkpoint_stays(tmp_path: Path, num_workers: int) -> None:
    runner = Runner(_data_config(tmp_path, lazy(Bad, size=1024), num_workers))
    raised, message = _train_and_release(runner)
    assert raised == "DataLoadingError", message
    assert "train_dataloader (Bad): Bad[777] raised ValueError: corrupt sample" in message
    assert "resume=true" in message
    assert runner.iter == 48  # iterations 1-48 done; 49 holds sample 777
    _assert_last_checkpoint_intact_and_resumable(tmp_path)


def test_a_killed_worker_is_named_and_the_last_checkpoint_stays(tmp_path: Path) -> None:
    go = tmp_path / "go"
    runner = Runner(_data_config(tmp_path / "run", lazy(KillsItsWorker, size=1024, go=str(go)), 2))
    runner.register_hook(Go(go, at=48))  # the worker dies while the main process waits for batch 49
    raised, message = _train_and_release(runner)
    assert raised == "DataLoadingError", message
    assert "train_dataloader (KillsItsWorker): a dataloader worker died" in message
    assert "resume=true" in message
    assert runner.iter == 48
    _assert_last_checkpoint_intact_and_resumable(tmp_path / "run")


def test_a_worker_killed_during_a_training_step_is_a_data_loading_error(tmp_path: Path) -> None:
    go = tmp_path / "go"
    runner = Runner(_data_config(tmp_path / "run", lazy(KillsItsWorker, size=1024, go=str(go)), 2))
    runner.register_hook(Go(go, at=45, busy=3.0))  # batch 49 is being prefetched by then
    raised, message = _train_and_release(runner)
    assert sorted(p.name for p in (tmp_path / "run").glob("*.pth"))[-1] == "iter_40.pth"
    assert (raised, "a dataloader worker died" in message) == ("DataLoadingError", True), (raised, message)
