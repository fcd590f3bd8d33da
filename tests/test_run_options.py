"""The run options around the hooks, in real runs: dynamic validation intervals, torch.compile, torchmetrics
metrics and the DataLoader's multiprocessing start method."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor

from tests.helpers import ITERS, parameters_of, read_checkpoint, weights_close
from typedrunner import lazy
from typedrunner.config import (
    DataLoader,
    DefaultHooks,
    DefaultSampler,
    EnvCfg,
    Evaluator,
    MpCfg,
    TrainLoop,
    TrainLoopConfig,
)
from typedrunner.hooks import EarlyStoppingHook, Hook, RunView
from typedrunner.runner import Runner
from typedrunner.testing import (
    ToyDataset,
    ToyMetric,
    ToyModel,
    toy_config,
)


class ValidatedAt(Hook):
    """The epoch and iteration of every validation."""

    def __init__(self) -> None:
        self.at: list[tuple[int, int]] = []

    def after_val_epoch(self, runner: RunView, metrics: Mapping[str, float] | None = None) -> None:
        self.at.append((runner.epoch, runner.iter))


class CompilingProbe(ToyModel):
    """ToyModel that counts its forwards, and those torch.compile traced (in buffers, so that a traced
    graph counts too; not persistent, so the state_dict is ToyModel's)."""

    forwards: Tensor
    traced: Tensor

    def __init__(self, dim: int = 4, hidden: int = 8) -> None:
        super().__init__(dim=dim, hidden=hidden)
        self.register_buffer("forwards", torch.zeros((), dtype=torch.long), persistent=False)
        self.register_buffer("traced", torch.zeros((), dtype=torch.long), persistent=False)

    def forward(self, data: Tensor, labels: Tensor, mode: str = "tensor") -> Any:
        self.forwards.add_(1)
        if torch.compiler.is_compiling():
            self.traced.add_(1)
        return super().forward(data, labels, mode)

    def counts(self) -> tuple[int, int]:
        """(forwards, traced forwards)."""
        return int(self.forwards), int(self.traced)


# ----------------------------------------------------------------------------------------------
# dynamic_intervals
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("train_cfg", "validated_at"),
    [
        # every epoch, then from epoch 2 every second epoch (and the last)
        (TrainLoop(max_epochs=6, val_interval=1, dynamic_intervals=[(2, 2)]), [1, 2, 4, 6]),
        (TrainLoop(max_epochs=7, val_interval=1, dynamic_intervals=[(3, 3), (5, 1)]), [1, 2, 3, 5, 6, 7]),
        # iterations: every 3, then from 6 every 2
        (TrainLoop(by_epoch=False, max_iters=12, val_interval=3, dynamic_intervals=[(6, 2)]), [3, 6, 8, 10, 12]),
        (TrainLoop(by_epoch=False, max_iters=13, val_interval=2, dynamic_intervals=[(5, 4)]), [2, 4, 8, 12, 13]),
    ],
    ids=["epochs", "epochs-two-changes", "iterations", "iterations-and-the-end"],
)
def test_dynamic_intervals_change_when_validation_runs(
    tmp_path: Path, train_cfg: TrainLoopConfig, validated_at: list[int]
) -> None:
    watcher = ValidatedAt()
    by_epoch = bool(train_cfg.by_epoch)
    runner = Runner(
        toy_config(
            tmp_path,
            train_cfg=train_cfg,
            custom_hooks=[watcher],
            default_hooks=DefaultHooks(checkpoint=None),
        )
    )
    runner.train()
    assert [epoch if by_epoch else it for epoch, it in watcher.at] == validated_at
    assert len(runner.metric_history) == len(validated_at)


# ----------------------------------------------------------------------------------------------
# compile
# ----------------------------------------------------------------------------------------------
def test_compile_trains_with_unprefixed_state_dict_keys(tmp_path: Path) -> None:
    runner = Runner(toy_config(tmp_path, max_epochs=2, model=lazy(CompilingProbe), compile={"backend": "eager"}))
    initial = parameters_of(runner.model)
    runner.train()
    model = runner.model
    assert isinstance(model, CompilingProbe)
    forwards, traced = model.counts()
    assert forwards == traced == 2 * ITERS + 2  # every training and validation forward was compiled
    assert not weights_close(parameters_of(model), initial)  # it trained

    plain = ToyModel(dim=4, hidden=8)
    assert list(model.state_dict()) == list(plain.state_dict())  # no '_orig_mod.' prefix
    state = read_checkpoint(tmp_path / "epoch_2.pth")["state_dict"]
    assert not any("_orig_mod" in key for key in state)
    plain.load_state_dict(state)  # strict: the checkpoint fits an uncompiled model
    data = ToyDataset(size=32, seed=1).data
    with torch.no_grad():
        assert torch.allclose(plain(data, None), model(data, None), atol=1e-6)


def test_compile_off_does_not_trace(tmp_path: Path) -> None:
    runner = Runner(toy_config(tmp_path, max_epochs=1, model=lazy(CompilingProbe)))
    runner.train()
    assert isinstance(runner.model, CompilingProbe)
    assert runner.model.counts() == (ITERS + 1, 0)  # so the count above can tell


# ----------------------------------------------------------------------------------------------
# torchmetrics
# ----------------------------------------------------------------------------------------------
def _built_accuracy() -> Any:
    from torchmetrics.classification import MulticlassAccuracy

    return MulticlassAccuracy(num_classes=2, average="micro")


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param("built", id="built-object"),
        pytest.param(
            {"type": "torchmetrics.classification.MulticlassAccuracy", "num_classes": 2, "average": "micro"},
            id="dotted-path",
        ),
    ],
)
def test_torchmetrics_accuracy_equals_toy_metric(tmp_path: Path, spec: Any) -> None:
    metric = _built_accuracy() if spec == "built" else spec
    runner = Runner(toy_config(tmp_path, max_epochs=3, val_evaluator=Evaluator(metrics=[lazy(ToyMetric), metric])))
    runner.train()
    history = runner.metric_history
    assert len(history) == 3
    assert all(m.keys() == {"accuracy", "MulticlassAccuracy"} for m in history)
    for metrics in history:
        assert metrics["MulticlassAccuracy"] == pytest.approx(metrics["accuracy"] / 100, rel=1e-6)
    assert len({m["accuracy"] for m in history}) > 1  # the values move: each validation is compared anew


# ----------------------------------------------------------------------------------------------
# env_cfg.mp_cfg.mp_start_method
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("start_method", "num_workers", "expected"),
    [("spawn", 1, "spawn"), ("forkserver", 2, "forkserver"), (None, 1, None), ("spawn", 0, None)],
)
def test_mp_start_method_reaches_the_dataloader(
    tmp_path: Path, start_method: Any, num_workers: int, expected: str | None
) -> None:
    loader = DataLoader(
        dataset=lazy(ToyDataset, size=64, seed=0),
        sampler=DefaultSampler(shuffle=True),
        batch_size=16,
        num_workers=num_workers,
    )
    runner = Runner(
        toy_config(tmp_path, train_dataloader=loader, env_cfg=EnvCfg(mp_cfg=MpCfg(mp_start_method=start_method)))
    )
    assert runner.train_dataloader is not None
    assert runner.train_dataloader.num_workers == num_workers
    context = runner.train_dataloader.multiprocessing_context
    assert (context.get_start_method() if context is not None else None) == expected


def test_early_stopping_monitor_is_checked_against_the_metric_names(tmp_path: Path) -> None:
    """A monitor the evaluator never returns would never stop anything: refused before training."""
    from typedrunner.errors import ContractError
    from typedrunner.testing import RecordingHook

    recorder = RecordingHook()
    runner = Runner(
        toy_config(tmp_path, custom_hooks=[{"type": "EarlyStoppingHook", "monitor": "acc", "patience": 2}, recorder])
    )
    problems = [p for p in runner.check() if p.severity == "error"]
    assert [p.path for p in problems] == ["custom_hooks[0].monitor"]
    assert "did you mean accuracy" in problems[0].message
    with pytest.raises(ContractError):
        runner.train()
    assert "before_train_iter" not in recorder.names()
    good = Runner(toy_config(tmp_path / "good", custom_hooks=[lazy(EarlyStoppingHook, monitor="accuracy")]))
    assert not [p for p in good.check() if p.severity == "error"]
