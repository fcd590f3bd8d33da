"""The runner's per-iteration call budget: its Python calls per training iteration minus those of a
hand-written PyTorch loop doing the same work, function by function.

Both train the toy model (``typedrunner.testing``: batches of 16 cycling 64 samples, SGD) in an
iteration-based loop, with the loss read to the host every 10 iterations; the runner with its default
hooks (a log every 10 iterations, a checkpoint only at the end). ``cProfile`` counts the calls of
``WINDOW`` whole iterations from iteration ``START`` in each: data loading, the step, and for the runner
every hook, its log lines and its non-finite guard. The difference is what the framework adds; torch's
own Python (``nn.Module.__call__``, the ``DataLoader`` iterator, ``torch.optim``) is in both and cancels.
The count is deterministic (the same on a loaded machine). Run::

    OMP_NUM_THREADS=1 python benchmarks/call_budget.py        # the budget and its 40 largest entries
    OMP_NUM_THREADS=1 python benchmarks/call_budget.py 100    # the 100 largest

``tests/test_speed_call_budget.py`` pins it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cProfile
import pstats
import tempfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, default_collate

from typedrunner.config import CheckpointHook, DefaultHooks, IterBasedTrainLoop, LoggerHook, Randomness
from typedrunner.parts.data import DefaultSampler
from typedrunner.parts.hooks.base import Hook, RunView
from typedrunner.runner import Runner
from typedrunner.testing import ToyDataset, ToyModel, toy_config

START, WINDOW, LOG_INTERVAL = 200, 100, 10
"""Profiled: iterations START + 1 to START + WINDOW (multiples of the log interval and the data pass)."""


@dataclass
class Budget:
    runner_calls: float
    """The runner's Python calls per iteration (including one: the measuring hook's own call)."""
    hand_calls: float
    """The hand-written loop's."""
    by_function: dict[str, float]
    """Per function, the runner's calls per iteration minus the hand-written loop's (non-zero only)."""

    @property
    def extra(self) -> float:
        return self.runner_calls - self.hand_calls


class _Window(Hook):
    """Profiles iterations START + 1 to START + WINDOW; runs last (after every other hook)."""

    priority = "LOWEST"

    def __init__(self) -> None:
        self.profile = cProfile.Profile()
        self.done = 0

    def after_train_iter(
        self, runner: RunView, batch_idx: int, data_batch: Any = None, outputs: Mapping[str, Tensor] | None = None
    ) -> None:
        self.done += 1  # no call into the runner: this hook adds exactly its own call to the count
        if self.done == START:
            self.profile.enable()
        elif self.done == START + WINDOW:
            self.profile.disable()


def runner_stats() -> pstats.Stats:
    max_iters = START + WINDOW + 20
    with tempfile.TemporaryDirectory() as work_dir:
        cfg = toy_config(
            work_dir,
            train_cfg=IterBasedTrainLoop(max_iters=max_iters, val_interval=max_iters),
            default_hooks=DefaultHooks(
                logger=LoggerHook(interval=LOG_INTERVAL), checkpoint=CheckpointHook(by_epoch=False, interval=max_iters)
            ),
            randomness=Randomness(seed=0),
            log_level="WARNING",
        )
        runner = Runner(cfg)
        window = _Window()
        runner.register_hook(window)
        runner.train()
    return pstats.Stats(window.profile)


def hand_stats() -> pstats.Stats:
    """The same work by hand: the toy model, data and optimizer; the loss read every 10 iterations."""
    torch.manual_seed(0)
    model = ToyModel(dim=4, hidden=8)
    dataset = ToyDataset(size=64, seed=0)
    sampler = DefaultSampler(dataset, shuffle=True, seed=0)
    loader = DataLoader(dataset, batch_size=16, sampler=sampler, collate_fn=default_collate)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    profile = cProfile.Profile()
    window: list[Tensor] = []
    logged: list[float] = []
    done, epoch = 0, 0
    model.train()
    while done < START + WINDOW:
        sampler.set_epoch(epoch)
        for data, labels in loader:
            loss = model(data, labels, mode="loss")["loss"]
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            window.append(loss.detach())
            if (done + 1) % LOG_INTERVAL == 0:
                logged.append(torch.stack(window).mean().item())
                window.clear()
            done += 1
            if done == START:
                profile.enable()
            elif done == START + WINDOW:
                profile.disable()
                break
        epoch += 1
    return pstats.Stats(profile)


def _per_function(stats: pstats.Stats) -> Counter[str]:
    root = str(Path(__file__).resolve().parents[1]) + os.sep
    counts: Counter[str] = Counter()
    raw: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    for (filename, line, name), (_, calls, *_rest) in raw.items():
        where = filename.replace(root, "").split("site-packages" + os.sep)[-1]
        counts[f"{where}:{line}({name})"] += calls
    return counts


def measure() -> Budget:
    torch.set_num_threads(1)
    runner, hand = runner_stats(), hand_stats()
    mine, theirs = _per_function(runner), _per_function(hand)
    by_function = {k: (mine[k] - theirs[k]) / WINDOW for k in mine | theirs if mine[k] != theirs[k]}
    total: int = runner.total_calls  # type: ignore[attr-defined]
    hand_total: int = hand.total_calls  # type: ignore[attr-defined]
    return Budget(total / WINDOW, hand_total / WINDOW, by_function)


def main() -> None:
    show = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    budget = measure()
    print(
        f"typedrunner {budget.runner_calls:.2f} Python calls per iteration, hand-written {budget.hand_calls:.2f}: "
        f"{budget.extra:.2f} more (iterations {START + 1}-{START + WINDOW}, a log every {LOG_INTERVAL})"
    )
    print("per iteration, typedrunner minus hand-written:")
    for name, extra in sorted(budget.by_function.items(), key=lambda kv: (-abs(kv[1]), kv[0]))[:show]:
        print(f"{extra:8.2f}  {name}")


if __name__ == "__main__":
    main()
