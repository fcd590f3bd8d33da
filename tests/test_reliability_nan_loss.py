"""Reliability: a non-finite loss stops the run with a clear message naming the iterations, writes no
checkpoint after it (or is skipped on request, keeping training finite), and the command line exits 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor

from tests.helpers import (
    PLUGINS,
    checkpoint_weights,
    explain,
    mlp_args,
    plugin_cli_env,
    read_checkpoint,
    resolved_pointer,
    run_cli,
    write_plugins,
)
from typedrunner import lazy
from typedrunner.config import (
    SGD,
    CheckpointHook,
    DataLoader,
    DefaultHooks,
    DefaultSampler,
    OptimWrapper,
    RunnerConfig,
)
from typedrunner.errors import NonFiniteLossError
from typedrunner.parts.optim import OptimWrapper as BuiltOptimWrapper
from typedrunner.runner import Runner
from typedrunner.testing import ToyDataset, toy_config


def _finite(weights: Mapping[str, Tensor]) -> bool:
    return all(bool(torch.isfinite(v).all()) for v in weights.values())


# ----------------------------------------------------------------------------------------------
# Non-finite losses
# ----------------------------------------------------------------------------------------------
class NanAt(ToyDataset):
    """ToyDataset with one NaN coordinate at ``nan_index``."""

    def __init__(self, size: int = 640, nan_index: int = 0) -> None:
        super().__init__(size)
        self.data[nan_index, 0] = float("nan")


NAN_ITER = 13
"""With batches of 16 in order, sample 16 * 12 + 5 is in iteration 13 (counted from 1)."""


def _nan_config(work_dir: Path, **overrides: Any) -> RunnerConfig:
    """40 iterations per epoch in order; the loss is NaN at iteration 13 of each epoch; iteration
    checkpoints every 5; the loss is checked every 10 (the logger's interval) and before each save."""
    values: dict[str, Any] = dict(
        train_dataloader=DataLoader(
            dataset=lazy(NanAt, size=640, nan_index=16 * (NAN_ITER - 1) + 5),
            sampler=DefaultSampler(shuffle=False),
            batch_size=16,
        ),
        default_hooks=DefaultHooks(checkpoint=CheckpointHook(by_epoch=False, interval=5)),
        log_level="WARNING",
    )
    values.update(overrides)
    return toy_config(work_dir, max_epochs=2, **values)


def test_nan_loss_stops_the_run_naming_the_iterations(tmp_path: Path) -> None:
    runner = Runner(_nan_config(tmp_path))
    with pytest.raises(NonFiniteLossError) as info:
        runner.train()
    message = str(info.value)
    assert "NaN or infinite between iterations 11 and 15" in message  # found before iter_15.pth is saved
    assert "loss=nan" in message and "nonfinite: skip" in message
    # the checkpoints from before the NaN are intact and finite
    for name in ("iter_5.pth", "iter_10.pth"):
        state = read_checkpoint(tmp_path / name)
        assert _finite(state["state_dict"]), name
    assert not (tmp_path / "iter_15.pth").exists()  # it stopped before saving NaN weights


def test_nan_loss_writes_no_checkpoint_after_the_nan(tmp_path: Path) -> None:
    runner = Runner(_nan_config(tmp_path))
    with pytest.raises(NonFiniteLossError):
        runner.train()
    written = sorted(p.name for p in tmp_path.glob("*.pth"))
    non_finite = [p for p in written if not _finite(checkpoint_weights(tmp_path / p))]
    assert non_finite == [], f"checkpoints with NaN weights: {non_finite} (all: {written})"
    assert resolved_pointer(tmp_path) == tmp_path / "iter_10.pth"


def test_nan_loss_skip_keeps_training_finite(tmp_path: Path) -> None:
    skip = OptimWrapper(optimizer=SGD(lr=0.1), nonfinite="skip")
    runner = Runner(_nan_config(tmp_path, optim_wrapper=skip))
    runner.train()
    assert runner.iter == 80
    wrapper = runner.optim_wrapper
    assert isinstance(wrapper, BuiltOptimWrapper)
    assert wrapper.skipped == 2  # iteration 13 of each epoch
    assert _finite(runner.model.state_dict())
    assert all(_finite(checkpoint_weights(p)) for p in tmp_path.glob("*.pth"))


def test_cli_nan_loss_exits_1_with_the_message(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    args = mlp_args(
        run_dir,
        f"+train_dataloader.dataset.nan_index={64 * (NAN_ITER - 1) + 5}",
        "train_dataloader.sampler.shuffle=false",
        dataset=f"{PLUGINS}.NanRings",
    )
    result = run_cli(args, plugin_cli_env(write_plugins(tmp_path)))
    assert result.returncode == 1, explain(result)
    assert "NaN or infinite between iterations 11 and 20" in result.stderr, explain(result)
    assert "Traceback" not in result.stderr, explain(result)
    assert list(run_dir.glob("*.pth")) == []  # caught at iteration 20, before the end of epoch 1 was saved
    assert "NaN or infinite" in (run_dir / "error_report.txt").read_text()
