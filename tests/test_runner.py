"""The Runner end to end: hook events and priorities, checkpoints, logs, schedules, load_from,
validation/test entry points, golden numbers against a hand-written loop, and the seed workload in
each configuration style."""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

import typedrunner.config as schemas
from examples.seed_mlp import MyAwesomeModel, MyDataset
from examples.train_manual import build_runner
from examples.train_python_config import seed_config
from tests.helpers import LossHook, runner_weights
from typedrunner import ConfigError, lazy
from typedrunner.app.compose import compose, to_runner_config
from typedrunner.config import (
    Adam,
    CheckpointHook,
    DataLoader,
    DefaultHooks,
    DefaultSampler,
    Evaluator,
    LoggerHook,
    MultiStepLR,
    OptimWrapper,
    Randomness,
    RunnerConfig,
    TrainLoop,
    ValLoop,
)
from typedrunner.hooks import Hook, RunView
from typedrunner.parts.optim import OptimWrapper as RuntimeOptimWrapper
from typedrunner.runner import Runner
from typedrunner.testing import RecordingHook, ToyDataset, ToyMetric, ToyModel, toy_config

TOY_ITERS_PER_EPOCH = 4  # toy_config: 64 training samples, batch 16


# ----------------------------------------------------------------------------------------------
# Helper hooks
# ----------------------------------------------------------------------------------------------
class AfterEpochOnly(Hook):
    """Overrides one event only."""

    def __init__(self) -> None:
        self.epochs: list[int] = []

    def after_train_epoch(self, runner: RunView) -> None:
        self.epochs.append(runner.epoch)


_TICKS = itertools.count()


class TickHook(Hook):
    """Records a global tick each time ``before_train_epoch`` reaches it (to compare call order)."""

    def __init__(self) -> None:
        self.ticks: list[int] = []

    def before_train_epoch(self, runner: RunView) -> None:
        self.ticks.append(next(_TICKS))


class HighestTick(TickHook):
    """Priority comes from the config (``{type: ..., priority: HIGHEST}``)."""


class NormalTick(TickHook):
    """Default priority (NORMAL)."""


class LowestTick(TickHook):
    """Priority from the class attribute, as MMEngine hooks declare it."""

    priority = "LOWEST"


class LrHook(Hook):
    """Records the optimizer's learning rate at the start of each epoch and each iteration."""

    def __init__(self) -> None:
        self.per_epoch: list[float] = []
        self.per_iter: list[float] = []

    def _lr(self, runner: RunView) -> float:
        assert isinstance(runner.optim_wrapper, RuntimeOptimWrapper)
        return runner.optim_wrapper.get_lr()[0]

    def before_train_epoch(self, runner: RunView) -> None:
        self.per_epoch.append(self._lr(runner))

    def before_train_iter(self, runner: RunView, batch_idx: int, data_batch: Any = None) -> None:
        self.per_iter.append(self._lr(runner))


class SnapshotHook(Hook):
    """Copies the model's weights when training starts."""

    def __init__(self) -> None:
        self.weights: dict[str, Tensor] = {}

    def before_train(self, runner: RunView) -> None:
        self.weights = {k: v.detach().clone() for k, v in runner.model.state_dict().items()}


def _assert_same_weights(a: Mapping[str, Tensor], b: Mapping[str, Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def _accuracy(model: torch.nn.Module, dataset: ToyDataset) -> float:
    model.eval()
    with torch.no_grad():
        scores, labels = model(dataset.data, dataset.labels, mode="predict")
    return 100.0 * int((scores.argmax(dim=1) == labels).sum()) / len(labels)


# ----------------------------------------------------------------------------------------------
# Hook events and dispatch
# ----------------------------------------------------------------------------------------------
def test_event_order_of_a_training_run(tmp_path: Path) -> None:
    recorder = RecordingHook()
    runner = Runner(
        toy_config(tmp_path, max_epochs=3, custom_hooks=[recorder], train_cfg=TrainLoop(max_epochs=3, val_begin=2))
    )
    runner.train()

    iter_pairs = ["before_train_iter", "after_train_iter"] * TOY_ITERS_PER_EPOCH
    val = ["before_val", "before_val_epoch", "before_val_iter", "after_val_iter", "after_val_epoch", "after_val"]
    epoch = ["before_train_epoch", *iter_pairs, "after_train_epoch", "before_save_checkpoint"]
    expected = [
        "before_run",
        "before_train",
        *epoch,  # epoch 1: before val_begin=2, no validation
        *epoch,
        *val,
        *epoch,
        *val,
        "after_train",
        "after_run",
    ]
    assert recorder.names() == expected

    # runner.epoch / runner.iter as each event sees them
    after_iters = [(e, i) for name, e, i in recorder.calls if name == "after_train_iter"]
    assert after_iters == [(e, e * TOY_ITERS_PER_EPOCH + k) for e in range(3) for k in range(TOY_ITERS_PER_EPOCH)]
    assert [(e, i) for name, e, i in recorder.calls if name == "before_val"] == [(2, 8), (3, 12)]
    assert recorder.calls[-1] == ("after_run", 3, 3 * TOY_ITERS_PER_EPOCH)
    assert runner.iter == runner.max_iters == 3 * TOY_ITERS_PER_EPOCH
    assert runner.epoch == 3


def test_hook_is_called_only_for_the_events_it_overrides(tmp_path: Path) -> None:
    hook = AfterEpochOnly()
    runner = Runner(toy_config(tmp_path, max_epochs=2, custom_hooks=[hook]))
    order = runner.hooks.order()
    events_with_hook = sorted(event for event, names in order.items() if "AfterEpochOnly" in names)
    assert events_with_hook == ["after_train_epoch"]
    assert hook.events() == {"after_train_epoch"}
    runner.train()
    assert hook.epochs == [0, 1]


def test_priorities_order_hooks(tmp_path: Path) -> None:
    lowest, normal = LowestTick(), NormalTick()
    cfg = toy_config(
        tmp_path,
        max_epochs=2,
        custom_hooks=[
            lowest,  # given first, called last (class priority LOWEST)
            {"type": HighestTick, "priority": "HIGHEST"},  # given second, called first
            normal,
            {"type": f"{__name__}.LowestTick", "priority": 45},  # an int priority, from a dotted path
        ],
    )
    runner = Runner(cfg)
    names = runner.hooks.order()["before_train_epoch"]
    assert names == ["HighestTick", "LowestTick", "IterTimerHook", "DistSamplerSeedHook", "NormalTick", "LowestTick"]
    built_highest = next(h for h in runner.hooks.hooks if isinstance(h, HighestTick))
    assert built_highest.priority_value == 0
    runner.train()
    assert len(built_highest.ticks) == len(normal.ticks) == len(lowest.ticks) == 2
    for epoch in range(2):
        assert built_highest.ticks[epoch] < normal.ticks[epoch] < lowest.ticks[epoch]


def test_default_hook_removed_with_none(tmp_path: Path) -> None:
    runner = Runner(toy_config(tmp_path, max_epochs=2, default_hooks=DefaultHooks(checkpoint=None)))
    assert all("CheckpointHook" not in names for names in runner.hooks.order().values())
    runner.train()
    assert list(tmp_path.glob("*.pth")) == []
    assert not (tmp_path / "last_checkpoint").exists()
    assert (tmp_path / "summary.json").is_file()  # the run itself happened


# ----------------------------------------------------------------------------------------------
# Checkpoints
# ----------------------------------------------------------------------------------------------
def test_checkpoints_every_epoch_with_pointer_and_safe_contents(tmp_path: Path) -> None:
    cfg = toy_config(tmp_path, max_epochs=3, param_scheduler=[MultiStepLR(milestones=[2], gamma=0.5)])
    runner = Runner(cfg)
    runner.train()
    assert sorted(p.name for p in tmp_path.glob("*.pth")) == ["epoch_1.pth", "epoch_2.pth", "epoch_3.pth"]
    pointer = tmp_path / (tmp_path / "last_checkpoint").read_text().strip()  # relative to work_dir
    assert pointer.resolve() == (tmp_path / "epoch_3.pth").resolve()

    state = torch.load(pointer, map_location="cpu", weights_only=True)
    assert {"state_dict", "optimizer", "param_schedulers", "meta"} <= state.keys()
    _assert_same_weights(state["state_dict"], runner_weights(runner))
    assert state["meta"]["epoch"] == 3
    assert state["meta"]["iter"] == 3 * TOY_ITERS_PER_EPOCH
    assert state["meta"]["seed"] == 0
    assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.05)
    assert len(state["param_schedulers"]) == 1
    # the window's last step, end - 1 = 2 (MMEngine's last_step is 2 here too), held at the end
    assert state["param_schedulers"][0]["state"]["last_epoch"] == 2

    first = torch.load(tmp_path / "epoch_1.pth", map_location="cpu", weights_only=True)
    assert first["meta"]["epoch"] == 1
    assert not all(torch.equal(first["state_dict"][k], state["state_dict"][k]) for k in state["state_dict"])


def test_max_keep_ckpts_keeps_the_newest(tmp_path: Path) -> None:
    hooks = DefaultHooks(checkpoint=CheckpointHook(interval=1, max_keep_ckpts=2))
    Runner(toy_config(tmp_path, max_epochs=4, default_hooks=hooks)).train()
    assert sorted(p.name for p in tmp_path.glob("*.pth")) == ["epoch_3.pth", "epoch_4.pth"]
    assert Path((tmp_path / "last_checkpoint").read_text().strip()).name == "epoch_4.pth"


@pytest.mark.parametrize(
    ("interval", "save_last", "expected"),
    [
        (2, True, ["epoch_2.pth", "epoch_4.pth", "epoch_5.pth"]),
        (2, False, ["epoch_2.pth", "epoch_4.pth"]),
    ],
)
def test_checkpoint_interval(tmp_path: Path, interval: int, save_last: bool, expected: list[str]) -> None:
    hooks = DefaultHooks(checkpoint=CheckpointHook(interval=interval, save_last=save_last))
    Runner(
        toy_config(tmp_path, max_epochs=5, default_hooks=hooks, val_dataloader=None, val_cfg=None, val_evaluator=None)
    ).train()
    assert sorted(p.name for p in tmp_path.glob("*.pth")) == expected


# ----------------------------------------------------------------------------------------------
# Logs and run files
# ----------------------------------------------------------------------------------------------
def test_scalars_config_and_summary_files(tmp_path: Path) -> None:
    runner = Runner(toy_config(tmp_path, max_epochs=2, default_hooks=DefaultHooks(logger=LoggerHook(interval=2))))
    runner.train()

    lines = [json.loads(line) for line in (tmp_path / "scalars.jsonl").read_text().splitlines() if line.strip()]
    train = [rec for rec in lines if rec["mode"] == "train"]
    val = [rec for rec in lines if rec["mode"] == "val"]
    assert len(train) == 2 * TOY_ITERS_PER_EPOCH // 2
    for rec in train:
        assert {"mode", "epoch", "iter", "loss", "lr"} <= rec.keys()
        assert isinstance(rec["loss"], float)
        assert rec["lr"] == pytest.approx(0.1)
    assert [(rec["epoch"], rec["iter"]) for rec in train] == [(1, 2), (1, 4), (2, 2), (2, 4)]
    assert [rec["epoch"] for rec in val] == [1, 2]
    assert all(0.0 <= rec["accuracy"] <= 100.0 for rec in val)
    assert (tmp_path / "run.log").read_text().strip()

    config = json.loads((tmp_path / "config.json").read_text())
    assert config["train_cfg"]["max_epochs"] == 2
    assert config["optim_wrapper"]["optimizer"]["lr"] == pytest.approx(0.1)
    assert config["randomness"]["seed"] == 0

    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["final_metrics"] == pytest.approx(runner.last_metrics)
    assert summary["final_metrics"]["accuracy"] == pytest.approx(val[-1]["accuracy"])
    assert summary["best_metrics"]["accuracy"] == pytest.approx(max(rec["accuracy"] for rec in val))
    assert summary["epochs"] == 2
    assert summary["iters"] == 2 * TOY_ITERS_PER_EPOCH


# ----------------------------------------------------------------------------------------------
# Parameter schedulers
# ----------------------------------------------------------------------------------------------
def test_multistep_lr_by_epoch(tmp_path: Path) -> None:
    lr = LrHook()
    cfg = toy_config(
        tmp_path,
        max_epochs=4,
        custom_hooks=[lr],
        param_scheduler=[MultiStepLR(by_epoch=True, milestones=[2, 3], gamma=0.1)],
    )
    runner = Runner(cfg)
    runner.train()
    assert lr.per_epoch == pytest.approx([0.1, 0.1, 0.01, 0.001])
    # constant within an epoch
    assert lr.per_iter == pytest.approx([v for v in lr.per_epoch for _ in range(TOY_ITERS_PER_EPOCH)])
    assert isinstance(runner.optim_wrapper, RuntimeOptimWrapper)
    assert runner.optim_wrapper.get_lr()[0] == pytest.approx(0.001)


def test_multistep_lr_by_iteration(tmp_path: Path) -> None:
    lr = LrHook()
    cfg = toy_config(
        tmp_path,
        max_epochs=2,
        custom_hooks=[lr],
        param_scheduler=[MultiStepLR(by_epoch=False, milestones=[2, 5], gamma=0.1)],
    )
    runner = Runner(cfg)
    runner.train()
    assert lr.per_iter == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.01, 0.001, 0.001, 0.001])
    assert lr.per_epoch == pytest.approx([0.1, 0.01])
    assert isinstance(runner.optim_wrapper, RuntimeOptimWrapper)
    assert runner.optim_wrapper.get_lr()[0] == pytest.approx(0.001)


# ----------------------------------------------------------------------------------------------
# load_from
# ----------------------------------------------------------------------------------------------
def test_load_from_loads_weights_before_training(tmp_path: Path) -> None:
    first = Runner(toy_config(tmp_path / "a", max_epochs=1))
    first.train()
    trained = runner_weights(first)

    snapshot, recorder = SnapshotHook(), RecordingHook()
    cfg = toy_config(
        tmp_path / "b",
        max_epochs=1,
        seed=1,
        load_from=str(tmp_path / "a" / "epoch_1.pth"),
        custom_hooks=[snapshot, recorder],
    )
    fresh = runner_weights(Runner(toy_config(tmp_path / "c", max_epochs=1, seed=1)))
    assert any(not torch.equal(fresh[k], trained[k]) for k in trained)  # the test can tell them apart
    second = Runner(cfg)  # load_from is applied at construction, before anything is written
    _assert_same_weights(runner_weights(second), trained)
    second.train()
    _assert_same_weights(snapshot.weights, trained)
    assert "after_load_checkpoint" in recorder.names()
    assert recorder.names().index("after_load_checkpoint") < recorder.names().index("before_train")


def test_load_from_mismatched_model_names_keys(tmp_path: Path) -> None:
    # A weights file of ToyModel(hidden=8) (keys net.0.*, net.2.*), as MMEngine's load_from accepts.
    checkpoint = tmp_path / "hidden8.pth"
    torch.save({"state_dict": ToyModel(dim=4, hidden=8).state_dict()}, checkpoint)
    cfg = toy_config(
        tmp_path / "b",
        max_epochs=1,
        model=lazy(ToyModel, dim=4, hidden=0),  # net.weight, net.bias
        load_from=str(checkpoint),
    )
    with pytest.raises(ConfigError) as info:
        Runner(cfg)  # the mismatch stops construction: nothing trained, nothing written
    text = str(info.value)
    for key in ("net.weight", "net.bias"):
        assert f"missing in the checkpoint: {key}" in text
    for key in ("net.0.weight", "net.0.bias", "net.2.weight", "net.2.bias"):
        assert f"not in the model: {key}" in text
    assert len(info.value.problems) == 6
    assert all(p.path == "load_from" for p in info.value.problems)
    assert not (tmp_path / "b").exists()


# ----------------------------------------------------------------------------------------------
# Validation of the stage trios; val() and test()
# ----------------------------------------------------------------------------------------------
def test_val_dataloader_without_evaluator_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        Runner(
            model=lazy(ToyModel, dim=4, hidden=8),
            work_dir=str(tmp_path),
            train_dataloader=DataLoader(dataset=lazy(ToyDataset, size=64), batch_size=16),
            train_cfg=TrainLoop(max_epochs=1),
            optim_wrapper=OptimWrapper(optimizer=Adam(lr=1e-3)),
            val_dataloader=DataLoader(dataset=lazy(ToyDataset, size=32, seed=1), batch_size=32),
            val_cfg=ValLoop(),
        )
    paths = [p.path for p in info.value.problems]
    assert paths == ["val_evaluator"]
    assert "val_evaluator" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_val_and_test_return_metrics(tmp_path: Path) -> None:
    recorder = RecordingHook()
    cfg = toy_config(
        tmp_path,
        max_epochs=1,
        custom_hooks=[recorder],
        test_dataloader=DataLoader(
            dataset=lazy(ToyDataset, size=48, seed=2), sampler=DefaultSampler(shuffle=False), batch_size=16
        ),
        test_cfg=schemas.TestLoop(),
        test_evaluator=Evaluator(metrics=[lazy(ToyMetric)]),
    )
    runner = Runner(cfg)
    val_metrics = runner.val()
    assert val_metrics.keys() == {"accuracy"}
    assert val_metrics["accuracy"] == pytest.approx(_accuracy(runner.model, ToyDataset(size=32, seed=1)))

    runner.train()
    test_metrics = runner.test()
    assert test_metrics.keys() == {"accuracy"}
    assert test_metrics["accuracy"] == pytest.approx(_accuracy(runner.model, ToyDataset(size=48, seed=2)))
    names = recorder.names()
    assert names.count("before_test_iter") == names.count("after_test_iter") == 3
    assert names[names.index("before_test") - 1 :] == [
        "before_run",
        "before_test",
        "before_test_epoch",
        *["before_test_iter", "after_test_iter"] * 3,
        "after_test_epoch",
        "after_test",
        "after_run",
    ]


def test_test_without_test_trio_is_a_config_error(tmp_path: Path) -> None:
    runner = Runner(toy_config(tmp_path, max_epochs=1))
    with pytest.raises(ConfigError) as info:
        runner.test()
    assert {p.path for p in info.value.problems} == {"test_dataloader", "test_cfg", "test_evaluator"}


# ----------------------------------------------------------------------------------------------
# Golden numbers and reproducibility
# ----------------------------------------------------------------------------------------------
def test_seed_model_losses_match_a_hand_written_loop(tmp_path: Path) -> None:
    seed, size, batch, epochs = 1234, 320, 64, 2  # 5 iterations per epoch
    losses = LossHook()
    cfg = RunnerConfig(
        model=lazy(MyAwesomeModel, layers=2, activation="relu"),
        work_dir=str(tmp_path),
        train_dataloader=DataLoader(
            dataset=lazy(MyDataset, is_train=True, size=size), sampler=DefaultSampler(shuffle=True), batch_size=batch
        ),
        train_cfg=TrainLoop(max_epochs=epochs),
        optim_wrapper=OptimWrapper(optimizer=Adam(lr=1e-3)),
        default_hooks=DefaultHooks(checkpoint=None),
        custom_hooks=[losses],
        randomness=Randomness(seed=seed),
    )
    runner = Runner(cfg)
    runner.train()

    # The same computation by hand: init under the same seed, DefaultSampler's documented order
    # (a permutation seeded with seed + epoch), Adam, cross-entropy.
    torch.manual_seed(seed)
    model = MyAwesomeModel(layers=2, activation="relu")
    dataset = MyDataset(is_train=True, size=size)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    expected: list[Tensor] = []
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(size, generator=torch.Generator().manual_seed(seed + epoch))
        for start in range(0, size, batch):
            idx = order[start : start + batch]
            loss = F.cross_entropy(model(dataset.data[idx], dataset.labels[idx], mode="tensor"), dataset.labels[idx])
            optimizer.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            expected.append(loss.detach())

    assert len(losses.losses) == len(expected) == epochs * size // batch
    for i, (got, want) in enumerate(zip(losses.losses, expected, strict=True)):
        assert torch.equal(got, want), f"iteration {i}: runner {got.item()!r} != hand loop {want.item()!r}"
    _assert_same_weights(runner_weights(runner), model.state_dict())


def test_same_seed_gives_bit_identical_weights(tmp_path: Path) -> None:
    def final(work_dir: Path, seed: int) -> dict[str, Tensor]:
        runner = Runner(toy_config(work_dir, max_epochs=2, seed=seed, default_hooks=DefaultHooks(checkpoint=None)))
        runner.train()
        return runner_weights(runner)

    a, b, c = final(tmp_path / "a", 7), final(tmp_path / "b", 7), final(tmp_path / "c", 8)
    _assert_same_weights(a, b)
    assert any(not torch.equal(a[k], c[k]) for k in a)  # the seed matters


# ----------------------------------------------------------------------------------------------
# The seed workload in each style
# ----------------------------------------------------------------------------------------------
def _no_workers(cfg: RunnerConfig) -> RunnerConfig:
    update: dict[str, Any] = {}
    for key in ("train_dataloader", "val_dataloader"):
        loader = getattr(cfg, key)
        assert isinstance(loader, DataLoader)
        update[key] = loader.model_copy(update={"num_workers": 0})
    return cfg.model_copy(update=update)


def _python_style(work_dir: Path, repo_root: Path) -> Runner:
    return Runner(_no_workers(seed_config(work_dir=str(work_dir), max_epochs=10)))


def _manual_style(work_dir: Path, repo_root: Path) -> Runner:
    return build_runner(work_dir=str(work_dir), max_epochs=10)


def _yaml_style(work_dir: Path, repo_root: Path) -> Runner:
    overrides = [
        "+experiment=mlp",
        f"work_dir={work_dir}",
        "train_dataloader.num_workers=0",
        "val_dataloader.num_workers=0",
    ]
    config, options = to_runner_config(compose(overrides, config_dir=str(repo_root / "conf")))
    assert options.check is False
    return Runner(config)


@pytest.mark.parametrize("make_runner", [_python_style, _manual_style, _yaml_style], ids=["python", "manual", "yaml"])
def test_seed_workload_reaches_the_tutorials_accuracy(tmp_path: Path, repo_root: Path, make_runner: Any) -> None:
    runner: Runner = make_runner(tmp_path, repo_root)
    runner.train()
    assert runner.iter == 1570
    assert len(runner.metric_history) == 9  # val_begin=2, every epoch
    assert runner.last_metrics["accuracy"] >= 93.0
    assert sorted(p.name for p in tmp_path.glob("epoch_*.pth")) == sorted(f"epoch_{i}.pth" for i in range(1, 11))
    assert isinstance(runner.optim_wrapper, RuntimeOptimWrapper)
    assert runner.optim_wrapper.get_lr()[0] == pytest.approx(1e-5)  # MultiStepLR [4, 8], gamma 0.1
