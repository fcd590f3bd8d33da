"""typedrunner against a hand-written loop on a GPU, in the same process (issue 14's GPU targets).

Run from the repo root on a machine with CUDA::

    OMP_NUM_THREADS=1 python benchmarks/gpu_bench.py [--rounds N]
    OMP_NUM_THREADS=1 python benchmarks/gpu_bench.py --smoke     # any machine: tiny sizes (CI runs this)

Two workloads, each trained by ``Runner.train()`` and by a hand-written loop doing the same work
(same model, data, optimizer, autocast and loss reads to the host: every ``LOG`` iterations), in
alternating rounds; only the training iterations are timed, after ``WARMUP`` untimed ones:

1. **The seed MLP** (two rings, batch 64, Adam): time per iteration. Target: typedrunner at most
   1.10x the hand-written loop (MMEngine 1.37x, Lightning 2.17x on an H100).
2. **ResNet-18** (the CIFAR variant: 3x3 stem, no max-pool), bf16 autocast, batch 256, synthetic
   CIFAR-sized images (3x32x32, 10 classes) from pinned memory with four workers, SGD with momentum:
   images per second. Target: at least 0.98x the hand-written loop's (MMEngine 0.78-0.82x,
   Lightning 0.73-0.89x).

Without CUDA (or with ``--smoke``) it runs both workloads on the CPU at tiny sizes, to prove the
script works; those figures mean nothing. Always exits 0 unless something fails to run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import statistics
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader as TorchDataLoader
from torch.utils.data import Dataset

from typedrunner.config import (
    SGD,
    Adam,
    DataLoader,
    DefaultHooks,
    DefaultSampler,
    IterBasedTrainLoop,
    LoggerHook,
    OptimWrapper,
    Randomness,
    RunnerConfig,
)
from typedrunner.hooks import Hook, RunView
from typedrunner.model import BaseModel
from typedrunner.registry.lazy import lazy
from typedrunner.runner import Runner

LOG = 10
"""The loss is read to the host every LOG iterations, by both loops (the logger's interval)."""


@dataclass(frozen=True)
class Workload:
    name: str
    """The model (``mlp`` on rings, ``resnet18`` on images)."""
    width: int
    size: int
    """Samples in the synthetic dataset."""
    batch_size: int
    iters: int
    warmup: int
    workers: int
    bf16: bool
    adam: bool


# -- the models and data ------------------------------------------------------------------------
class Classifier(BaseModel):
    """A network and cross-entropy, in typedrunner's forward contract (``mode="loss"``)."""

    def __init__(self, kind: str, width: int) -> None:
        super().__init__()
        self.net = network(kind, width)

    def forward(self, data: Tensor, labels: Tensor, mode: str = "tensor") -> Any:
        scores = self.net(data)
        if mode == "loss":
            return {"loss": F.cross_entropy(scores, labels)}
        if mode == "predict":
            return scores, labels
        return scores


def network(kind: str, width: int) -> nn.Module:
    if kind == "mlp":
        return nn.Sequential(nn.Linear(2, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 2))
    return resnet18(width)


class _Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout
            else nn.Identity()
        )

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.short(x))


def resnet18(width: int = 64, classes: int = 10) -> nn.Module:
    """ResNet-18 for 32x32 images: a 3x3 stem, four stages of two basic blocks, global pooling."""
    layers: list[nn.Module] = [nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
    cin = width
    for stage, stride in enumerate((1, 2, 2, 2)):
        cout = width * 2**stage
        layers += [_Block(cin, cout, stride), _Block(cout, cout, 1)]
        cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes)]
    return nn.Sequential(*layers)


class Tensors(Dataset[tuple[Tensor, Tensor]]):
    """Samples from two tensors made once (synthetic data: the loop, not the data, is measured)."""

    def __init__(self, kind: str, size: int) -> None:
        generator = torch.Generator().manual_seed(0)
        if kind == "rings":
            labels = torch.randint(0, 2, (size,), generator=generator)
            radius = 3 * (labels + 1) + torch.randn(size, generator=generator)
            theta = torch.rand(size, generator=generator) * 2 * torch.pi
            self.data = torch.stack([radius * torch.cos(theta), radius * torch.sin(theta)], dim=1)
        else:
            self.data = torch.randn(size, 3, 32, 32, generator=generator)
            labels = torch.randint(0, 10, (size,), generator=generator)
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.data[index], self.labels[index]


# -- the two loops ------------------------------------------------------------------------------
class _Clock(Hook):
    """Starts the clock once ``warmup`` iterations are done (after a device sync), stops it at the end."""

    priority = "LOWEST"

    def __init__(self, warmup: int, device: torch.device) -> None:
        self.warmup, self.device = warmup, device
        self.started = self.seconds = 0.0

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def after_train_iter(
        self, runner: RunView, batch_idx: int, data_batch: Any = None, outputs: Mapping[str, Tensor] | None = None
    ) -> None:
        if runner.iter + 1 == self.warmup:
            self._sync()
            self.started = time.perf_counter()

    def after_train(self, runner: RunView) -> None:
        self._sync()
        self.seconds = time.perf_counter() - self.started


def run_typedrunner(w: Workload, work_dir: str) -> float:
    """Seconds of the timed iterations under ``Runner.train()``."""
    optimizer = Adam(lr=1e-3) if w.adam else SGD(lr=0.1, momentum=0.9)
    wrapper = (
        OptimWrapper(type="AmpOptimWrapper", dtype="bfloat16", optimizer=optimizer)
        if w.bf16
        else OptimWrapper(optimizer=optimizer)
    )
    total = w.warmup + w.iters
    cfg = RunnerConfig.model_validate(
        dict(
            model=lazy(Classifier, kind=w.name, width=w.width),
            work_dir=work_dir,
            train_dataloader=DataLoader(
                dataset=lazy(Tensors, kind="rings" if w.name == "mlp" else "images", size=w.size),
                sampler=DefaultSampler(shuffle=True),
                batch_size=w.batch_size,
                num_workers=w.workers,
                pin_memory=True,
                persistent_workers=w.workers > 0,
            ),
            train_cfg=IterBasedTrainLoop(max_iters=total, val_interval=total),
            optim_wrapper=wrapper,
            default_hooks=DefaultHooks(logger=LoggerHook(interval=LOG), checkpoint=None),  # no saves: none by hand
            randomness=Randomness(seed=0),
            log_level="WARNING",
        )
    )
    runner = Runner(cfg)
    clock = _Clock(w.warmup, runner.device)
    runner.register_hook(clock)
    runner.train()
    return clock.seconds


def _batches(loader: TorchDataLoader[Any]) -> Iterator[Any]:
    while True:
        yield from loader


def run_hand(w: Workload, device: torch.device) -> float:
    """Seconds of the same timed iterations in a hand-written loop."""
    torch.manual_seed(0)
    model = network(w.name, w.width).to(device)
    loader: TorchDataLoader[Any] = TorchDataLoader(
        Tensors("rings" if w.name == "mlp" else "images", w.size),
        batch_size=w.batch_size,
        shuffle=True,
        num_workers=w.workers,
        pin_memory=device.type == "cuda",
        persistent_workers=w.workers > 0,
        drop_last=False,
    )
    optimizer: torch.optim.Optimizer = (
        torch.optim.Adam(model.parameters(), lr=1e-3)
        if w.adam
        else torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    )
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=w.bf16)
    window: list[Tensor] = []
    started = 0.0
    for i, (data, labels) in enumerate(_batches(loader)):
        if i == w.warmup + w.iters:
            break
        if i == w.warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
        data, labels = data.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        with autocast:
            loss = F.cross_entropy(model(data), labels)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        window.append(loss.detach())
        if (i + 1) % LOG == 0:
            torch.stack(window).mean().item()
            window.clear()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


def workloads(smoke: bool) -> list[Workload]:
    if smoke:
        return [
            Workload("mlp", 64, 640, 64, 20, 5, 0, False, True),
            Workload("resnet18", 8, 64, 16, 4, 2, 0, True, False),
        ]
    return [
        Workload("mlp", 64, 10000, 64, 2000, 200, 0, False, True),
        Workload("resnet18", 64, 50000, 256, 300, 30, 4, True, False),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of each loop (default 3)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on any device (the figures mean nothing)")
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    smoke = args.smoke or not cuda
    device = torch.device("cuda" if cuda else "cpu")
    name = torch.cuda.get_device_name() if cuda else "CPU"
    print(
        f"gpu_bench: torch {torch.__version__} on {name}" + (" (smoke mode: the figures mean nothing)" if smoke else "")
    )
    for w in workloads(smoke):
        typed: list[float] = []
        hand: list[float] = []
        with tempfile.TemporaryDirectory(prefix="gpu_bench_") as tmp:
            for r in range(args.rounds):
                for which in ("typed", "hand") if r % 2 == 0 else ("hand", "typed"):
                    if which == "typed":
                        typed.append(run_typedrunner(w, str(Path(tmp) / f"{w.name}{r}")))
                    else:
                        hand.append(run_hand(w, device))
        t, h = statistics.median(typed), statistics.median(hand)
        if w.name == "mlp":
            ratio = t / h
            print(
                f"{w.name}: {t / w.iters * 1e6:.0f} us/iter typedrunner, {h / w.iters * 1e6:.0f} us/iter hand-written, "
                f"ratio {ratio:.2f}x (target <= 1.10x: {'met' if ratio <= 1.10 else 'NOT met'})"
            )
        else:
            typed_ips, hand_ips = w.iters * w.batch_size / t, w.iters * w.batch_size / h
            ratio = typed_ips / hand_ips
            print(
                f"{w.name}: {typed_ips:.0f} images/s typedrunner, {hand_ips:.0f} images/s hand-written, "
                f"ratio {ratio:.3f}x (target >= 0.98x: {'met' if ratio >= 0.98 else 'NOT met'})"
            )


if __name__ == "__main__":
    main()
