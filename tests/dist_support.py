"""Models and metrics the distributed tests load by dotted path (``model.type=tests.dist_support...``):
the seed's MLP with a failure on one rank, or slowed down so that a signal lands mid-run, and a
metric that records one result per sample."""

from __future__ import annotations

import os
import time
from typing import Any

from torch import Tensor

from examples.seed_mlp import MyAwesomeModel, MyDataset
from typedrunner.evaluator import BaseMetric

SMALL = [
    "+experiment=mlp",
    "~param_scheduler",
    "train_dataloader.num_workers=0",
    "val_dataloader.num_workers=0",
    "train_dataloader.dataset.size=256",
    "val_dataloader.dataset.size=64",
    "+randomness.seed=0",
    "train_cfg.val_begin=1",
]
"""The seed experiment on 256 points, no schedule, seed 0."""


class FailsOnRankOne(MyAwesomeModel):
    """The seed's MLP; on rank 1 its third training forward raises ``ValueError: boom on rank 1``."""

    def __init__(self, layers: int = 4, activation: str = "relu") -> None:
        super().__init__(layers, activation)  # type: ignore[arg-type]
        self.calls = 0

    def forward(self, data: Tensor, labels: Tensor, mode: str = "tensor") -> Any:
        if mode == "loss" and self.training:
            self.calls += 1
            if self.calls == 3 and os.environ.get("RANK", os.environ.get("SLURM_PROCID")) == "1":
                raise ValueError("boom on rank 1")
        return super().forward(data, labels, mode)


class Slow(MyAwesomeModel):
    """The seed's MLP, 0.25 s per training forward: a signal sent mid-run lands between iterations."""

    def __init__(self, layers: int = 4, activation: str = "relu") -> None:
        super().__init__(layers, activation)  # type: ignore[arg-type]

    def forward(self, data: Tensor, labels: Tensor, mode: str = "tensor") -> Any:
        if mode == "loss":
            time.sleep(0.25)
        return super().forward(data, labels, mode)


class PerSample(BaseMetric):
    """One result per sample (its label, whether class 1 scored higher): the count, the label sum and
    the class-1 predictions over the samples seen (a sample seen twice, or missed, changes them)."""

    def process(self, data_batch: Any, data_samples: Any) -> None:
        score, gt = data_samples
        for s, g in zip(score[:, 1].tolist(), gt.tolist(), strict=True):
            self.results.append((float(s), int(g)))

    def compute_metrics(self, results: list[Any]) -> dict[str, float]:
        return {
            "samples": float(len(results)),
            "label_sum": float(sum(g for _, g in results)),
            "predicted_ones": float(sum(s > 0.5 for s, _ in results)),
        }


def validate(out: str, launcher: str) -> None:
    """``python -m tests.dist_support OUT LAUNCHER``: validate the seed's MLP (seed 0, untrained) on 101
    points in batches of 4 with a per-batch metric (Accuracy) and a per-sample one; rank 0 writes the
    metrics to OUT as JSON."""
    import json
    from pathlib import Path

    from typedrunner.runner import Runner

    loader = {
        "dataset": {"type": "examples.seed_mlp.MyDataset", "is_train": False, "size": 101},
        "batch_size": 4,
        "sampler": {"type": "DefaultSampler", "shuffle": False},
    }
    runner = Runner(
        model={"type": "examples.seed_mlp.MyAwesomeModel", "layers": 2},
        work_dir=str(Path(out).parent / "work"),
        val_dataloader=loader,
        val_cfg={},
        val_evaluator=[{"type": "examples.seed_mlp.Accuracy"}, {"type": "tests.dist_support.PerSample"}],
        launcher=launcher,
        randomness={"seed": 0},
    )
    metrics = runner.val()
    if runner.rank == 0:
        Path(out).write_text(json.dumps(metrics), encoding="utf-8")


class OddLabelsFloat(MyDataset):
    """The seed's rings with float labels at odd indices: with two ranks and no shuffling, only rank 1's
    batches hold them (cross-entropy then refuses its targets)."""

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        data, label = super().__getitem__(index)
        return data, label.float() if index % 2 else label


if __name__ == "__main__":
    import sys

    validate(sys.argv[1], sys.argv[2])
