"""Every failure during training exits 1 with one short report and no traceback: also a model or a
batch that goes wrong only after the probe passed (a raise, a loss that is not a mapping, a dtype
that changes). The report names the iteration, the exception and the intact checkpoint to resume
from, and is written to ``error_report.txt``; ``HYDRA_FULL_ERROR=1`` adds the traceback.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.helpers import explain, mlp_args, plugin_cli_env, read_checkpoint, resolved_pointer, run_cli

MODULE = "training_error_plugins"
"""A module written to ``tmp_path`` and put on the child's PYTHONPATH (the CLI imports it)."""
SOURCE = '''
"""A model and a dataset that behave through the probe and go wrong once ``Arm`` says so."""
from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor

from examples.seed_mlp import MyAwesomeModel, MyDataset
from typedrunner.hooks import Hook, RunView

ARMED = {"on": False}


class Arm(Hook):
    """Arms the failures below once training iteration ``at`` (counted from 1) is done."""

    def __init__(self, at: int) -> None:
        self.at = at

    def after_train_iter(self, runner: RunView, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        if runner.iter + 1 == self.at:
            ARMED["on"] = True


class Raises(MyAwesomeModel):
    def forward(self, data: Tensor, labels: Tensor, mode: str = "tensor") -> Any:
        if ARMED["on"] and mode == "loss":
            raise RuntimeError("the model broke in its forward")
        return super().forward(data, labels, mode)


class LossNotADict(MyAwesomeModel):
    def forward(self, data: Tensor, labels: Tensor, mode: str = "tensor") -> Any:
        if ARMED["on"] and mode == "loss":
            return F.cross_entropy(super().forward(data, labels, "tensor"), labels)
        return super().forward(data, labels, mode)


class TurnsDouble(MyDataset):
    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        data, label = super().__getitem__(index)
        return (data.double() if ARMED["on"] else data), label
'''
ARM_AT = 25
"""Iterations done before things go wrong: epoch 1 (20 iterations) is saved, iteration 26 fails."""


def _failing_run(
    tmp_path: Path, model: str = "MyAwesomeModel", dataset: str = "MyDataset", full_error: bool = False
) -> tuple[subprocess.CompletedProcess[str], Path]:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / f"{MODULE}.py").write_text(SOURCE, encoding="utf-8")
    env = plugin_cli_env(plugins)
    if full_error:
        env["HYDRA_FULL_ERROR"] = "1"
    run_dir = tmp_path / "run"
    args = mlp_args(
        run_dir,
        f"custom_imports=[examples.seed_mlp,{MODULE}]",
        f"model.type={model}",
        f"+custom_hooks=[{{type:{MODULE}.Arm,at:{ARM_AT}}}]",
        dataset=dataset,
    )
    return run_cli(args, env), run_dir


def _assert_reported(result: subprocess.CompletedProcess[str], run_dir: Path, *fragments: str) -> None:
    """Exit 1, one report without a traceback naming what and where, saved, epoch 1 intact and named."""
    assert result.returncode == 1, explain(result)
    report = (run_dir / "error_report.txt").read_text(encoding="utf-8").strip()
    for fragment in (f"training failed at iteration {ARM_AT + 1} (epoch 2)", *fragments, "HYDRA_FULL_ERROR=1"):
        assert fragment in report, f"{fragment!r} not in the report:\n{report}"
    assert report in result.stderr, explain(result)
    assert "Traceback" not in result.stderr + result.stdout, explain(result)
    assert len(report.splitlines()) <= 3, report
    checkpoint = run_dir / "epoch_1.pth"
    assert sorted(p.name for p in run_dir.glob("*.pth")) == ["epoch_1.pth"]
    assert read_checkpoint(checkpoint)["meta"]["iter"] == ARM_AT - 5
    assert resolved_pointer(run_dir) == checkpoint
    assert f"The last checkpoint is intact ({checkpoint})" in report, report
    assert f"resume=true work_dir={run_dir}" in report, report


def test_a_model_raising_after_the_probe_is_reported_without_a_traceback(tmp_path: Path) -> None:
    result, run_dir = _failing_run(tmp_path, model=f"{MODULE}.Raises")
    _assert_reported(result, run_dir, "RuntimeError: the model broke in its forward")


def test_a_loss_that_is_not_a_mapping_after_the_probe_is_reported(tmp_path: Path) -> None:
    result, run_dir = _failing_run(tmp_path, model=f"{MODULE}.LossNotADict")
    _assert_reported(
        result, run_dir, "TypeError: the model's forward(mode='loss') must return a mapping of names to losses"
    )


def test_a_batch_that_turns_double_after_the_probe_is_reported(tmp_path: Path) -> None:
    result, run_dir = _failing_run(tmp_path, dataset=f"{MODULE}.TurnsDouble")
    _assert_reported(result, run_dir, "RuntimeError: mat1 and mat2 must have the same dtype")


def test_hydra_full_error_adds_the_traceback(tmp_path: Path) -> None:
    result, run_dir = _failing_run(tmp_path, model=f"{MODULE}.Raises", full_error=True)
    assert result.returncode == 1, explain(result)
    assert "Traceback (most recent call last)" in result.stderr, explain(result)
    assert 'raise RuntimeError("the model broke in its forward")' in result.stderr, explain(result)
    report = (run_dir / "error_report.txt").read_text(encoding="utf-8")
    assert f"training failed at iteration {ARM_AT + 1} (epoch 2)" in report and report.strip() in result.stderr
