"""Fail fast without side effects: the contract probe leaves no trace (bit-identical training with and
without it; RNG states, parameters, buffers and train/eval modes restored).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader as TorchDataLoader
from torch.utils.data import RandomSampler

from tests.helpers import assert_bit_identical, state
from typedrunner import lazy
from typedrunner.runner import Runner
from typedrunner.testing import ToyDataset, ToyMetric, ToyModel, toy_config


class BatchNormDropoutModel(ToyModel):
    """A classifier whose training forward mutates buffers (BatchNorm) and draws random numbers (Dropout)."""

    def __init__(self, dim: int = 4, hidden: int = 8) -> None:
        super().__init__(dim=dim, hidden=hidden)
        self.net = nn.Sequential(
            nn.Linear(dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Dropout(0.5), nn.Linear(hidden, 2)
        )


class AugmentedDataset(ToyDataset):
    """Random augmentation from Python's ``random`` (flip) and numpy's global RNG (jitter)."""

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        data = self.data[index].clone()
        if random.random() < 0.5:
            data[1:] = -data[1:]
        return data + float(np.random.normal(scale=0.01)), self.labels[index]


# ----------------------------------------------------------------------------------------------
# The probe has no side effects
# ----------------------------------------------------------------------------------------------
def _configured(work_dir: Path, model: Any) -> Runner:
    """Config style: ``DefaultSampler`` shuffling with its own seeded generator."""
    return Runner(toy_config(work_dir, seed=7, model=model))


def _manual(work_dir: Path, model_class: type[ToyModel]) -> Runner:
    """MMEngine's manual style: a built model and torch DataLoaders; training shuffles with RandomSampler
    (which draws its seed from torch's global RNG) and augments with ``random`` and numpy."""
    torch.manual_seed(123)
    loader = TorchDataLoader(AugmentedDataset(size=64), batch_size=16, shuffle=True)
    assert isinstance(loader.sampler, RandomSampler)
    return Runner(
        model=model_class(dim=4, hidden=8),
        work_dir=str(work_dir),
        train_dataloader=loader,
        val_dataloader=TorchDataLoader(ToyDataset(size=32, seed=1), batch_size=32),
        train_cfg=dict(by_epoch=True, max_epochs=2, val_begin=1),
        val_cfg=dict(),
        val_evaluator=dict(type=ToyMetric),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
        randomness=dict(seed=7),
    )


def default_sampler_runner(work_dir: Path) -> Runner:
    return _configured(work_dir, lazy(ToyModel, dim=4, hidden=8))


def batchnorm_dropout_runner(work_dir: Path) -> Runner:
    return _configured(work_dir, lazy(BatchNormDropoutModel, dim=4, hidden=8))


def random_sampler_runner(work_dir: Path) -> Runner:
    return _manual(work_dir, ToyModel)


def random_sampler_batchnorm_dropout_runner(work_dir: Path) -> Runner:
    return _manual(work_dir, BatchNormDropoutModel)


@pytest.mark.parametrize(
    "make",
    [default_sampler_runner, random_sampler_runner, batchnorm_dropout_runner, random_sampler_batchnorm_dropout_runner],
)
def test_probe_leaves_training_bit_identical(tmp_path: Path, make: Callable[[Path], Runner]) -> None:
    probed = make(tmp_path / "probed")
    probed.train()  # check=True: the probe runs first
    unprobed = make(tmp_path / "unprobed")
    unprobed.train(check=False)
    assert probed.batch_structure and not unprobed.batch_structure
    assert_bit_identical(state(probed.model), state(unprobed.model))
    assert probed.last_metrics == unprobed.last_metrics


RngStates = tuple[object, tuple[list[int], int, int, float], Tensor]


def _rng_states() -> RngStates:
    """Python's, numpy's global and torch's RNG states, comparable with ``==`` (torch's with torch.equal)."""
    numpy = np.random.get_state(legacy=False)
    numpy_state = (numpy["state"]["key"].tolist(), int(numpy["state"]["pos"]), numpy["has_gauss"], numpy["gauss"])
    return random.getstate(), numpy_state, torch.get_rng_state()


def _assert_same_rng(before: RngStates) -> None:
    python, numpy, torch_state = _rng_states()
    assert python == before[0], "python's random state changed"
    assert numpy == before[1], "numpy's global RNG state changed"
    assert torch.equal(torch_state, before[2]), "torch's RNG state changed"


def test_check_leaves_rng_parameters_buffers_and_modes_unchanged(tmp_path: Path) -> None:
    runner = random_sampler_batchnorm_dropout_runner(tmp_path)
    model = runner.model
    model.train()
    model.get_submodule("net.1").eval()  # a frozen BatchNorm inside a training model: the mixed mode must survive
    random.seed(5)
    np.random.seed(5)
    torch.manual_seed(5)
    rng_before = _rng_states()
    weights_before = state(model)
    modes_before = {name: m.training for name, m in model.named_modules()}

    assert runner.check() == []

    _assert_same_rng(rng_before)
    assert_bit_identical(state(model), weights_before)  # parameters and BatchNorm running stats
    assert {name: m.training for name, m in model.named_modules()} == modes_before
    assert all(p.grad is None for p in model.parameters())
    assert runner.batch_structure["train"] == "list(Tensor[16, 4] float32, Tensor[16] int64)"


def test_what_check_restores_does_change_without_it(tmp_path: Path) -> None:
    """Guard for the test above: one batch through the same parts, outside the probe, changes every one."""
    runner = random_sampler_batchnorm_dropout_runner(tmp_path)
    loader = runner.train_dataloader
    assert loader is not None
    random.seed(5)
    np.random.seed(5)
    torch.manual_seed(5)
    python, numpy, torch_state = _rng_states()
    weights = state(runner.model)
    runner.model.train()
    data, labels = next(iter(loader))
    runner.model(data, labels, mode="loss")
    after = _rng_states()
    assert after[0] != python
    assert after[1] != numpy
    assert not torch.equal(after[2], torch_state)
    assert not torch.equal(runner.model.state_dict()["net.1.running_mean"], weights["net.1.running_mean"])
