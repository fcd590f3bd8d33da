"""Checkpoint and resume, exactly: N steps straight equal N/2 steps, a crash, a resume and the rest,
bit for bit (epoch- and iteration-based, with dropout, workers and every kind of interruption); and
what a checkpoint holds, loaded safely.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import typedrunner
from tests.helpers import (
    ITERS_PER_EPOCH,
    LossHook,
    assert_same_state,
    interrupted_run,
    optim_wrapper_of,
    pointer_target,
    read_checkpoint,
    runner_weights,
)
from typedrunner import lazy
from typedrunner.config import (
    SGD,
    Adam,
    CheckpointHook,
    DataLoader,
    DefaultHooks,
    DefaultSampler,
    MultiStepLR,
    OptimWrapper,
    RunnerConfig,
    TrainLoop,
)
from typedrunner.hooks import Hook, RunView
from typedrunner.model import BaseModel
from typedrunner.runner import Runner
from typedrunner.testing import (
    Interrupt,
    ToyDataset,
    toy_config,
)


# ----------------------------------------------------------------------------------------------
# Recorders, a dropout model, a dataset that counts its reads
# ----------------------------------------------------------------------------------------------
class DropoutModel(BaseModel):
    """A classifier with dropout: its training depends on the torch RNG, not only on the data."""

    def __init__(self, dim: int = 4, hidden: int = 16, p: float = 0.5) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(p), nn.Linear(hidden, 2))

    def forward(self, data: Tensor, labels: Tensor, mode: str = "tensor") -> Any:
        logits = self.net(data)
        if mode == "loss":
            return {"loss": F.cross_entropy(logits, labels)}
        if mode == "predict":
            return logits.softmax(dim=1), labels
        return logits


class CountingDataset(ToyDataset):
    """ToyDataset that records, in this process, every index it is asked for."""

    def __init__(self, size: int = 64, dim: int = 4, seed: int = 0) -> None:
        super().__init__(size, dim, seed)
        self.fetched: list[int] = []

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        self.fetched.append(int(index))
        return super().__getitem__(index)


class ForgetProbeReads(Hook):
    """Clears the counting dataset when training starts (the contract probe read one batch before)."""

    priority = "HIGHEST"

    def before_train(self, runner: RunView) -> None:
        _counting(runner).fetched.clear()


class RngAtSave(Hook):
    """Every RNG stream as it is when a checkpoint is being written."""

    def __init__(self) -> None:
        self.states: list[tuple[Any, Tensor, Any]] = []

    def before_save_checkpoint(self, runner: RunView, checkpoint: dict[str, Any]) -> None:
        self.states.append((random.getstate(), torch.get_rng_state(), np.random.get_state()))


def _counting(runner: RunView) -> CountingDataset:
    assert runner.train_dataloader is not None
    dataset = runner.train_dataloader.dataset
    assert isinstance(dataset, CountingDataset)
    return dataset


def _values_of(state: Any, key: str) -> list[Any]:
    """Every value stored under ``key`` in a nested state (whatever its nesting)."""
    if isinstance(state, Mapping):
        found = [state[key]] if key in state else []
        return found + [v for inner in state.values() for v in _values_of(inner, key)]
    if isinstance(state, (list, tuple)):
        return [v for inner in state for v in _values_of(inner, key)]
    return []


# ----------------------------------------------------------------------------------------------
# N straight == N/2 + crash + resume + N/2, bit for bit
# ----------------------------------------------------------------------------------------------
def _loader(*, num_workers: int = 0, dataset: Any = None) -> DataLoader:
    return DataLoader(
        dataset=dataset if dataset is not None else lazy(ToyDataset, size=64, seed=0),
        sampler=DefaultSampler(shuffle=True),
        batch_size=16,
        num_workers=num_workers,
    )


def _case_config(case: str, work_dir: Path, **extra: Any) -> RunnerConfig:
    """The run of each resume case (a 4-epoch or 14-iteration run on the toy data, shuffled)."""
    if case == "epoch_end":  # (a) epoch checkpoints, MultiStepLR by epoch, SGD with momentum
        values: dict[str, Any] = dict(
            param_scheduler=[MultiStepLR(milestones=[1, 3], gamma=0.5)],
            optim_wrapper=OptimWrapper(optimizer=SGD(lr=0.1, momentum=0.9)),
        )
    elif case in ("mid_epoch", "epoch_boundary"):  # (b) iteration checkpoints in an epoch-based run, Adam
        interval = 3 if case == "mid_epoch" else ITERS_PER_EPOCH
        values = dict(
            param_scheduler=[MultiStepLR(milestones=[1, 3], gamma=0.5)],
            optim_wrapper=OptimWrapper(optimizer=Adam(lr=0.01)),
            default_hooks=DefaultHooks(checkpoint=CheckpointHook(by_epoch=False, interval=interval)),
        )
    elif case in ("iteration", "iteration_workers"):  # (c) the iteration-based loop, schedule per iteration
        values = dict(
            train_dataloader=_loader(num_workers=2 if case == "iteration_workers" else 0),
            train_cfg=TrainLoop(by_epoch=False, max_iters=14, val_interval=4),
            param_scheduler=[MultiStepLR(by_epoch=False, milestones=[3, 9], gamma=0.5)],
            optim_wrapper=OptimWrapper(optimizer=SGD(lr=0.1, momentum=0.9)),
            default_hooks=DefaultHooks(checkpoint=CheckpointHook(by_epoch=False, interval=3)),
        )
    elif case == "dropout":  # (d) the RNG matters: dropout, resumed mid-epoch
        values = dict(
            model=lazy(DropoutModel, dim=4, hidden=16, p=0.5),
            param_scheduler=[MultiStepLR(milestones=[2], gamma=0.5)],
            optim_wrapper=OptimWrapper(optimizer=SGD(lr=0.1, momentum=0.9)),
            default_hooks=DefaultHooks(checkpoint=CheckpointHook(by_epoch=False, interval=3)),
        )
    else:
        raise AssertionError(case)
    values.update(extra)
    return toy_config(work_dir, max_epochs=4, seed=3, **values)


RESUME_CASES = [
    # case, where the crash happens, (epoch, iter, inner_iter) the resumed run starts from
    pytest.param("epoch_end", Interrupt(epochs=2), (2, 8, 0), id="a-epoch-multisteplr"),
    pytest.param("mid_epoch", Interrupt(iters=6), (1, 6, 2), id="b-mid-epoch"),
    pytest.param("epoch_boundary", Interrupt(iters=8), (1, 8, 4), id="b-iteration-checkpoint-at-epoch-end"),
    pytest.param("iteration", Interrupt(iters=9), (2, 9, 1), id="c-iteration-loop"),
    pytest.param(
        "iteration_workers",
        Interrupt(iters=9),
        (2, 9, 1),
        id="c-iteration-loop-2-workers",
        marks=pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning"),
    ),
    pytest.param("dropout", Interrupt(iters=6), (1, 6, 2), id="d-dropout-mid-epoch"),
]


@pytest.mark.parametrize(("case", "interrupt", "position"), RESUME_CASES)
def test_resume_is_bit_identical_to_an_uninterrupted_run(
    tmp_path: Path, case: str, interrupt: Interrupt, position: tuple[int, int, int]
) -> None:
    # 1. Uninterrupted.
    straight_losses = LossHook()
    straight = Runner(_case_config(case, tmp_path / "straight"))
    straight.register_hook(straight_losses)
    straight.train()

    # 2. The same run, crashing right after a checkpoint.
    first_losses = LossHook()
    interrupted_run(_case_config(case, tmp_path / "run"), interrupt, first_losses)
    checkpoint = read_checkpoint(pointer_target(tmp_path / "run"))
    assert (checkpoint["meta"]["epoch"], checkpoint["meta"]["iter"], checkpoint["meta"]["inner_iter"]) == position
    assert len(first_losses.losses) == position[1]

    # 3. A new process-like Runner on the same work_dir continues it.
    resumed = Runner(_case_config(case, tmp_path / "run", resume=True))
    assert (resumed.epoch, resumed.iter, resumed.inner_iter) == position
    assert torch.equal(torch.get_rng_state(), checkpoint["rng"]["torch"])  # the RNG is where it was
    assert not [p for p in resumed.check() if p.stage == "resume"]  # same config: nothing to report
    resumed_losses = LossHook()
    resumed.register_hook(resumed_losses)
    resumed.train()

    assert (resumed.epoch, resumed.iter, resumed.inner_iter) == (straight.epoch, straight.iter, straight.inner_iter)
    assert resumed.iter == straight.max_iters
    assert_same_state(runner_weights(resumed), runner_weights(straight), "state_dict")
    assert_same_state(optim_wrapper_of(resumed).state_dict(), optim_wrapper_of(straight).state_dict(), "optimizer")
    assert optim_wrapper_of(resumed).get_lr() == optim_wrapper_of(straight).get_lr()
    # The last checkpoints agree too: schedules, RNG streams, position.
    mine, theirs = (
        read_checkpoint(pointer_target(tmp_path / "run")),
        read_checkpoint(pointer_target(tmp_path / "straight")),
    )
    assert pointer_target(tmp_path / "run").name == pointer_target(tmp_path / "straight").name
    for key in ("state_dict", "optimizer", "param_schedulers", "rng"):
        assert_same_state(mine[key], theirs[key], key)
    for key in ("epoch", "iter", "inner_iter"):
        assert mine["meta"][key] == theirs["meta"][key]
    expected = straight_losses.losses
    got = first_losses.losses + resumed_losses.losses
    assert len(got) == len(expected) == straight.max_iters
    for i, (a, b) in enumerate(zip(got, expected, strict=True)):
        assert torch.equal(a, b), f"iteration {i}: {a.item()!r} != {b.item()!r}"
    assert resumed.last_metrics == straight.last_metrics


def test_dropout_run_depends_on_the_rng(tmp_path: Path) -> None:
    """The dropout case above would catch a lost RNG state: the same weights and data give other
    losses under another RNG state."""
    runner = Runner(_case_config("dropout", tmp_path))
    dataset = ToyDataset(size=16, seed=0)
    batch, labels = dataset.data, dataset.labels
    runner.model.train()
    torch.manual_seed(0)
    a = runner.model(batch, labels, mode="loss")["loss"]
    b = runner.model(batch, labels, mode="loss")["loss"]
    torch.manual_seed(0)
    c = runner.model(batch, labels, mode="loss")["loss"]
    assert not torch.equal(a, b)
    assert torch.equal(a, c)


def test_iteration_resume_reads_only_the_remaining_samples(tmp_path: Path) -> None:
    def config(work_dir: Path, **extra: Any) -> RunnerConfig:
        return toy_config(
            work_dir,
            seed=5,
            train_dataloader=_loader(dataset=lazy(CountingDataset, size=64, seed=0)),
            train_cfg=TrainLoop(by_epoch=False, max_iters=10, val_interval=5),
            default_hooks=DefaultHooks(checkpoint=CheckpointHook(by_epoch=False, interval=3)),
            **extra,
        )

    straight = Runner(config(tmp_path / "straight"))
    straight.register_hook(ForgetProbeReads())
    straight.train()
    reads = _counting(straight).fetched
    # DefaultSampler's documented order: pass p is a permutation seeded with seed + p.
    order = [i for p in range(3) for i in torch.randperm(64, generator=torch.Generator().manual_seed(5 + p)).tolist()]
    assert reads == order[: 10 * 16]

    first = interrupted_run(config(tmp_path / "run"), Interrupt(iters=6), ForgetProbeReads())
    assert _counting(first).fetched == reads[: 6 * 16]

    resumed = Runner(config(tmp_path / "run", resume=True))
    assert (resumed.epoch, resumed.iter, resumed.inner_iter) == (1, 6, 2)
    resumed.register_hook(ForgetProbeReads())
    resumed.train()
    assert _counting(resumed).fetched == reads[6 * 16 :]  # exactly the rest: nothing skipped is read again
    assert_same_state(runner_weights(resumed), runner_weights(straight))


# ----------------------------------------------------------------------------------------------
# What a checkpoint holds
# ----------------------------------------------------------------------------------------------
def test_checkpoint_contents_load_safely_and_hold_everything_to_resume(tmp_path: Path) -> None:
    rng = RngAtSave()
    cfg = toy_config(
        tmp_path,
        max_epochs=2,
        seed=11,
        param_scheduler=[MultiStepLR(milestones=[1], gamma=0.5)],
        optim_wrapper=OptimWrapper(optimizer=SGD(lr=0.1, momentum=0.9)),
        default_hooks=DefaultHooks(checkpoint=CheckpointHook(save_best="accuracy")),
    )
    runner = Runner(cfg)
    runner.register_hook(rng)
    runner.train()

    state = torch.load(tmp_path / "epoch_2.pth", map_location="cpu", weights_only=True)
    assert set(state) == {"meta", "state_dict", "optimizer", "param_schedulers", "rng", "hooks"}

    meta = state["meta"]
    assert (meta["epoch"], meta["iter"], meta["inner_iter"], meta["seed"]) == (2, 2 * ITERS_PER_EPOCH, 0, 11)
    assert meta["typedrunner_version"] == typedrunner.__version__
    assert meta["torch_version"] == str(torch.__version__)
    config = json.loads(meta["config"])
    assert config == runner.cfg.model_dump(mode="json")
    assert RunnerConfig.model_validate(config).train_cfg == cfg.train_cfg

    assert_same_state(state["state_dict"], runner_weights(runner), "state_dict")
    assert_same_state(state["optimizer"], optim_wrapper_of(runner).state_dict(), "optimizer")
    assert state["optimizer"]["state"][0]["momentum_buffer"].shape == runner.model.state_dict()["net.0.weight"].shape
    assert len(state["param_schedulers"]) == 1
    # saved at the end of the 2-epoch run: the window's last step, end - 1 = 1 (as MMEngine's last_step)
    assert _values_of(state["param_schedulers"][0], "last_epoch") == [1]

    # The RNG streams as they were at the moment of saving (the third save: epoch_1, best, epoch_2).
    python_state, torch_state, numpy_state = rng.states[2]
    assert set(state["rng"]) == {"python", "torch", "numpy"}
    version, internal, gauss = state["rng"]["python"]
    assert (version, tuple(internal), gauss) == python_state
    assert torch.equal(state["rng"]["torch"], torch_state)
    name, keys, pos, _, _ = state["rng"]["numpy"]
    assert (name, pos) == (numpy_state[0], numpy_state[2])
    assert np.array_equal(keys.numpy().astype(np.uint32), numpy_state[1])

    # Hook state: the best score so far (epoch_2 is written before epoch 2's validation).
    best_after_epoch_1 = runner.metric_history[0]["accuracy"]
    assert state["hooks"]["CheckpointHook"]["best"] == {"accuracy": best_after_epoch_1}
    best = torch.load(tmp_path / "best_accuracy.pth", map_location="cpu", weights_only=True)
    assert "optimizer" not in best and "param_schedulers" not in best
    assert best["hooks"]["CheckpointHook"]["best"]["accuracy"] == max(m["accuracy"] for m in runner.metric_history)
