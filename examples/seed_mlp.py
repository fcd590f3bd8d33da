"""The seed workload's model, dataset and metric (MMEngine's Runner tutorial), written as the
tutorial writes them with only the ``mmengine`` imports changed to ``typedrunner`` ones.

``conf/experiment/mlp.yaml`` imports this module through ``custom_imports``.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from typedrunner.evaluator import BaseMetric
from typedrunner.model import BaseModel
from typedrunner.registry import DATASETS, METRICS, MODELS


@MODELS.register_module()
class MyAwesomeModel(BaseModel):
    """MLP classifier over 2-D points: ``layers`` hidden blocks of width 64."""

    def __init__(self, layers: int = 4, activation: Literal["relu", "silu", "none"] = "relu") -> None:
        super().__init__()
        if activation == "relu":
            act: type[nn.Module] = nn.ReLU
        elif activation == "silu":
            act = nn.SiLU
        elif activation == "none":
            act = nn.Identity
        else:
            raise NotImplementedError(activation)
        self.layer0 = nn.Linear(2, 64)
        self.act0 = act()
        self.layers = nn.ModuleList([nn.Linear(64, 64) for _ in range(layers - 1)])
        self.acts = nn.ModuleList([act() for _ in range(layers - 1)])
        self.classifier = nn.Linear(64, 2)

    def forward(self, data: Tensor, labels: Tensor, mode: str = "tensor") -> Any:
        x = self.act0(self.layer0(data))
        for layer, act in zip(self.layers, self.acts, strict=True):
            x = act(layer(x))
        x = self.classifier(x)
        if mode == "tensor":
            return x
        if mode == "predict":
            return F.softmax(x, dim=1), labels
        if mode == "loss":
            return {"loss": F.cross_entropy(x, labels)}
        raise ValueError(f"unknown mode {mode!r}")


@DATASETS.register_module()
class MyDataset(Dataset[tuple[Tensor, Tensor]]):
    """Two noisy concentric rings, two classes (train: seed 0; val: seed 3407)."""

    def __init__(self, is_train: bool, size: int) -> None:
        torch.manual_seed(0 if is_train else 3407)
        self.labels = torch.randint(0, 2, (size,))
        r = 3 * (self.labels + 1) + torch.randn(self.labels.shape)
        theta = torch.rand(self.labels.shape) * 2 * math.pi
        self.data = torch.vstack([r * torch.cos(theta), r * torch.sin(theta)]).T

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.data[index], self.labels[index]

    def __len__(self) -> int:
        return len(self.data)


@METRICS.register_module()
class Accuracy(BaseMetric):
    """Percentage of samples whose highest score is the label."""

    def process(self, data_batch: Any, data_samples: Any) -> None:
        score, gt = data_samples
        self.results.append({"batch_size": len(gt), "correct": (score.argmax(dim=1) == gt).sum().cpu()})

    def compute_metrics(self, results: list[Any]) -> dict[str, float]:
        total_correct = sum(int(item["correct"]) for item in results)
        total_size = sum(item["batch_size"] for item in results)
        return {"accuracy": 100 * total_correct / total_size}
