"""MMEngine itself, for the tests that compare with it (the dev extra installs ``mmengine-lite`` and
``opencv-python-headless``, which its Runner imports): a tiny model and dataset in MMEngine's terms,
and a real MMEngine ``Runner`` run that records what each iteration trained with."""

from __future__ import annotations

import copy
import itertools
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

with warnings.catch_warnings():  # importing MMEngine warns (torch.jit.script is deprecated, ...)
    warnings.simplefilter("ignore")
    mmengine = pytest.importorskip("mmengine", reason="the dev extra installs mmengine-lite")
    from mmengine.hooks import Hook as MMHook
    from mmengine.model import BaseModel as MMBaseModel
    from mmengine.runner import Runner as MMRunner

SAMPLES, BATCH = 64, 16  # 4 iterations per epoch, as typedrunner.testing.toy_config
_names = itertools.count()


@contextmanager
def quiet() -> Iterator[None]:
    """MMEngine warns about things that do not matter here (no metainfo, ...); pytest makes warnings errors."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


class MMModel(MMBaseModel):  # type: ignore[misc]
    """A linear regression, in MMEngine's model contract (``forward(..., mode)``)."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor, mode: str = "loss") -> Any:
        out = self.linear(x)
        if mode == "loss":
            return {"loss": ((out - y) ** 2).mean()}
        return out


class MMData(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    def __len__(self) -> int:
        return SAMPLES

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"x": torch.full((4,), index / SAMPLES), "y": torch.zeros(1)}


class Values(MMHook):  # type: ignore[misc]
    """The lr and momentum (SGD's ``momentum``, Adam's ``betas[0]``) of each iteration, before it runs."""

    def __init__(self) -> None:
        self.lr: list[float] = []
        self.momentum: list[float] = []

    def before_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None) -> None:
        group = runner.optim_wrapper.optimizer.param_groups[0]
        self.lr.append(float(group["lr"]))
        self.momentum.append(float(group["betas"][0] if "betas" in group else group["momentum"]))


def mmengine_runner(work_dir: Path, max_epochs: int, **values: Any) -> Any:
    """A real MMEngine Runner on the tiny model and data; ``values`` are further Runner arguments."""
    arguments: dict[str, Any] = {
        "model": MMModel(),
        "work_dir": str(work_dir),
        "train_dataloader": {
            "dataset": MMData(),
            "batch_size": BATCH,
            "sampler": {"type": "DefaultSampler", "shuffle": False},
            "collate_fn": {"type": "default_collate"},
        },
        "optim_wrapper": {"optimizer": {"type": "SGD", "lr": 0.1, "momentum": 0.9}},
        "train_cfg": {"by_epoch": True, "max_epochs": max_epochs},
        "default_hooks": {"checkpoint": None, "logger": None},
        "log_level": "ERROR",
        "experiment_name": f"mmengine_{next(_names)}",  # MMEngine keeps one visualizer per name
    }
    arguments.update(values)
    with quiet():
        return MMRunner(**arguments)


def mmengine_schedule(
    work_dir: Path, schedules: Sequence[dict[str, Any]], max_epochs: int, optimizer: dict[str, Any]
) -> Values:
    """Train with MMEngine's Runner and ``param_scheduler=schedules``: what each iteration trained with."""
    values = Values()
    runner = mmengine_runner(
        work_dir,
        max_epochs,
        optim_wrapper={"optimizer": dict(optimizer)},
        param_scheduler=copy.deepcopy(list(schedules)),
        custom_hooks=[values],
    )
    with quiet():
        runner.train()
    return values


with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from mmengine.evaluator import BaseMetric as MMBaseMetric


class MMAccuracy(MMBaseMetric):  # type: ignore[misc]
    """A metric as an MMEngine user writes it: an ``mmengine.evaluator.BaseMetric`` subclass (accuracy
    in percent over the toy model's ``(scores, labels)`` predictions)."""

    default_prefix = "mm"

    def process(self, data_batch: Any, data_samples: Any) -> None:
        scores, labels = data_samples
        self.results.append((len(labels), int((scores.argmax(dim=1) == labels).sum())))

    def compute_metrics(self, results: list[Any]) -> dict[str, float]:
        total = sum(n for n, _ in results)
        return {"accuracy": 100.0 * sum(c for _, c in results) / max(total, 1)}


class MMClassifier(MMBaseModel):  # type: ignore[misc]
    """typedrunner.testing.ToyModel(dim=4, hidden=8)'s layers under another name (``backbone``), as an
    MMEngine model: its checkpoint needs ``revise_keys`` to load into the toy model."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))

    def forward(self, x: torch.Tensor, y: torch.Tensor, mode: str = "loss") -> Any:
        logits = self.backbone(x)
        if mode == "loss":
            return {"loss": nn.functional.cross_entropy(logits, (y[:, 0] > 0.5).long())}
        return logits


def mmengine_checkpoint(work_dir: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    """Train MMClassifier for one epoch with MMEngine's Runner, its CheckpointHook saving; the file,
    and the weights it holds (read from the trained model)."""
    model = MMClassifier()
    runner = mmengine_runner(
        work_dir,
        1,
        model=model,
        default_hooks={"checkpoint": {"type": "CheckpointHook", "interval": 1}, "logger": None},
        param_scheduler=[{"type": "MultiStepLR", "milestones": [1]}],
    )
    with quiet():
        runner.train()
    return work_dir / "epoch_1.pth", {k: v.detach().clone() for k, v in model.state_dict().items()}


with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from mmengine.evaluator import Evaluator as MMEvaluator


class MMScripted(MMBaseMetric):  # type: ignore[misc]
    """``{key: values[n]}`` at the ``n``-th validation (from 0): the score a test chooses, as
    typedrunner.testing.ScriptedMetric gives it after epoch ``n + 1``."""

    def __init__(self, key: str, values: Sequence[float]) -> None:
        super().__init__()
        self.key = key
        self.values = list(values)
        self.done = 0

    def process(self, data_batch: Any, data_samples: Any) -> None:
        self.results.append(1)

    def compute_metrics(self, results: list[Any]) -> dict[str, float]:
        value = self.values[self.done]
        self.done += 1
        return {self.key: value}


def mmengine_plateau(
    work_dir: Path, schedules: Sequence[dict[str, Any]], script: Sequence[float], optimizer: dict[str, Any]
) -> Values:
    """Train ``len(script)`` epochs with MMEngine's Runner, validating after each one (its metric gives
    ``script`` in turn, under the key ``accuracy``), so that its ParamSchedulerHook steps a
    ``ReduceOnPlateauLR`` on each validation's metrics as in any MMEngine run: what each iteration trained with."""
    values = Values()
    runner = mmengine_runner(
        work_dir,
        len(script),
        optim_wrapper={"optimizer": dict(optimizer)},
        param_scheduler=copy.deepcopy(list(schedules)),
        custom_hooks=[values],
        train_cfg={"by_epoch": True, "max_epochs": len(script), "val_begin": 1, "val_interval": 1},
        val_dataloader={
            "dataset": MMData(),
            "batch_size": BATCH,
            "sampler": {"type": "DefaultSampler", "shuffle": False},
            "collate_fn": {"type": "default_collate"},
        },
        val_cfg={},
        val_evaluator=MMEvaluator([MMScripted("accuracy", script)]),
    )
    with quiet():
        runner.train()
    return values
