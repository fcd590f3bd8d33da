"""Checkpoint and resume, exactly: N steps straight equal N/2 steps, a crash, a resume and the rest,
bit for bit; what a checkpoint holds; how resume finds (or refuses) a checkpoint; what a changed
config does; and every CheckpointHook option."""

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
from typedrunner import ConfigError, lazy
from typedrunner.config import (
    SGD,
    Adam,
    CheckpointHook,
    DataLoader,
    DefaultHooks,
    DefaultSampler,
    Evaluator,
    MultiStepLR,
    OptimWrapper,
    ParamwiseCfg,
    RunnerConfig,
    TrainLoop,
)
from typedrunner.hooks import Hook
from typedrunner.model import BaseModel
from typedrunner.optim import OptimWrapper as BuiltOptimWrapper
from typedrunner.runner import Runner
from typedrunner.testing import (
    EpochToMetric,
    Interrupt,
    Interrupted,
    RecordingHook,
    ScriptedMetric,
    ToyDataset,
    ToyModel,
    toy_config,
)

ITERS_PER_EPOCH = 4  # toy_config: 64 training samples, batch 16


# ----------------------------------------------------------------------------------------------
# Helpers: an interruption, recorders, a dropout model, a dataset that counts its reads
# ----------------------------------------------------------------------------------------------
class LossHook(Hook):
    """Every iteration's loss."""

    def __init__(self) -> None:
        self.losses: list[Tensor] = []

    def after_train_iter(
        self, runner: Runner, batch_idx: int, data_batch: Any = None, outputs: Mapping[str, Tensor] | None = None
    ) -> None:
        assert outputs is not None
        self.losses.append(outputs["loss"].detach().clone())


class LrHook(Hook):
    """The learning rate at the start of each epoch."""

    def __init__(self) -> None:
        self.per_epoch: list[float] = []

    def before_train_epoch(self, runner: Runner) -> None:
        self.per_epoch.append(_optim(runner).get_lr()[0])


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

    def before_train(self, runner: Runner) -> None:
        _counting(runner).fetched.clear()


class BestFileHook(Hook):
    """After each validation (once the CheckpointHook has run): the metrics, and the best file's
    epoch and recorded best score, or None while there is none."""

    priority = "LOWEST"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.metrics: list[dict[str, float]] = []
        self.seen: list[tuple[int, dict[str, float]] | None] = []

    def after_val_epoch(self, runner: Runner, metrics: Mapping[str, float] | None = None) -> None:
        self.metrics.append(dict(metrics or {}))
        if not self.path.is_file():
            self.seen.append(None)
            return
        state = torch.load(self.path, map_location="cpu", weights_only=True)
        self.seen.append((int(state["meta"]["epoch"]), dict(state["hooks"]["CheckpointHook"]["best"])))


class RngAtSave(Hook):
    """Every RNG stream as it is when a checkpoint is being written."""

    def __init__(self) -> None:
        self.states: list[tuple[Any, Tensor, Any]] = []

    def before_save_checkpoint(self, runner: Runner, checkpoint: dict[str, Any]) -> None:
        self.states.append((random.getstate(), torch.get_rng_state(), np.random.get_state()))


def _optim(runner: Runner) -> BuiltOptimWrapper:
    assert isinstance(runner.optim_wrapper, BuiltOptimWrapper)
    return runner.optim_wrapper


def _counting(runner: Runner) -> CountingDataset:
    assert runner.train_dataloader is not None
    dataset = runner.train_dataloader.dataset
    assert isinstance(dataset, CountingDataset)
    return dataset


def _weights(runner: Runner) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in runner.model.state_dict().items()}


def _assert_same(a: Any, b: Any, where: str = "") -> None:
    """Equal structure, equal plain values, bit-identical tensors."""
    if isinstance(a, Tensor):
        assert isinstance(b, Tensor), where
        assert a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, Mapping):
        assert isinstance(b, Mapping), where
        assert a.keys() == b.keys(), where
        for key in a:
            _assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def _values_of(state: Any, key: str) -> list[Any]:
    """Every value stored under ``key`` in a nested state (whatever its nesting)."""
    if isinstance(state, Mapping):
        found = [state[key]] if key in state else []
        return found + [v for inner in state.values() for v in _values_of(inner, key)]
    if isinstance(state, (list, tuple)):
        return [v for inner in state for v in _values_of(inner, key)]
    return []


def _load(path: Path) -> dict[str, Any]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert isinstance(state, dict)
    return state


def _pointer(work_dir: Path) -> Path:
    return Path((work_dir / "last_checkpoint").read_text(encoding="utf-8").strip())


def _files(directory: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``directory`` with its size and modification time."""
    return {
        str(p.relative_to(directory)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def _interrupted_run(cfg: RunnerConfig, interrupt: Interrupt, *hooks: Hook) -> Runner:
    runner = Runner(cfg)
    for hook in (*hooks, interrupt):
        runner.register_hook(hook)
    with pytest.raises(Interrupted):
        runner.train()
    return runner


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
    _interrupted_run(_case_config(case, tmp_path / "run"), interrupt, first_losses)
    checkpoint = _load(_pointer(tmp_path / "run"))
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
    _assert_same(_weights(resumed), _weights(straight), "state_dict")
    _assert_same(_optim(resumed).state_dict(), _optim(straight).state_dict(), "optimizer")
    assert _optim(resumed).get_lr() == _optim(straight).get_lr()
    # The last checkpoints agree too: schedules, RNG streams, position.
    mine, theirs = _load(_pointer(tmp_path / "run")), _load(_pointer(tmp_path / "straight"))
    assert _pointer(tmp_path / "run").name == _pointer(tmp_path / "straight").name
    for key in ("state_dict", "optimizer", "param_schedulers", "rng"):
        _assert_same(mine[key], theirs[key], key)
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

    first = _interrupted_run(config(tmp_path / "run"), Interrupt(iters=6), ForgetProbeReads())
    assert _counting(first).fetched == reads[: 6 * 16]

    resumed = Runner(config(tmp_path / "run", resume=True))
    assert (resumed.epoch, resumed.iter, resumed.inner_iter) == (1, 6, 2)
    resumed.register_hook(ForgetProbeReads())
    resumed.train()
    assert _counting(resumed).fetched == reads[6 * 16 :]  # exactly the rest: nothing skipped is read again
    _assert_same(_weights(resumed), _weights(straight))


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

    _assert_same(state["state_dict"], _weights(runner), "state_dict")
    _assert_same(state["optimizer"], _optim(runner).state_dict(), "optimizer")
    assert state["optimizer"]["state"][0]["momentum_buffer"].shape == runner.model.state_dict()["net.0.weight"].shape
    assert len(state["param_schedulers"]) == 1
    assert _values_of(state["param_schedulers"][0], "last_epoch") == [2]

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


# ----------------------------------------------------------------------------------------------
# Finding the checkpoint to resume
# ----------------------------------------------------------------------------------------------
def test_resume_true_without_checkpoint_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        Runner(toy_config(tmp_path / "new", resume=True))
    assert [p.path for p in info.value.problems] == ["resume"]
    assert "resume: auto" in info.value.problems[0].message
    assert "holds no checkpoint" in str(info.value)
    assert not (tmp_path / "new").exists()


def test_resume_auto_without_checkpoint_starts_from_scratch(tmp_path: Path) -> None:
    plain = Runner(toy_config(tmp_path / "plain", max_epochs=2))
    plain.train()
    auto = Runner(toy_config(tmp_path / "auto", max_epochs=2, resume="auto"))
    assert (auto.epoch, auto.iter, auto.inner_iter) == (0, 0, 0)
    auto.train()
    assert auto.iter == 2 * ITERS_PER_EPOCH
    assert (tmp_path / "auto" / "epoch_2.pth").is_file()
    _assert_same(_weights(auto), _weights(plain))


def test_resume_auto_with_a_checkpoint_resumes(tmp_path: Path) -> None:
    first = Runner(toy_config(tmp_path, max_epochs=3))
    first.register_hook(Interrupt(epochs=2))
    with pytest.raises(Interrupted):
        first.train()
    recorder = RecordingHook()
    auto = Runner(toy_config(tmp_path, max_epochs=3, resume="auto"))
    assert (auto.epoch, auto.iter) == (2, 2 * ITERS_PER_EPOCH)
    auto.register_hook(recorder)
    auto.train()
    assert [e for name, e, _ in recorder.calls if name == "before_train_epoch"] == [2]
    straight = Runner(toy_config(tmp_path / "straight", max_epochs=3))
    straight.train()
    _assert_same(_weights(auto), _weights(straight))


def test_load_from_with_resume_true_resumes_from_that_file(tmp_path: Path) -> None:
    full = Runner(toy_config(tmp_path / "a", max_epochs=3))
    full.train()
    epoch_1 = _load(tmp_path / "a" / "epoch_1.pth")

    resumed = Runner(
        toy_config(tmp_path / "b", max_epochs=3, load_from=str(tmp_path / "a" / "epoch_1.pth"), resume=True)
    )
    assert (resumed.epoch, resumed.iter) == (1, ITERS_PER_EPOCH)  # not epoch_3, the latest in a/
    _assert_same(_weights(resumed), epoch_1["state_dict"])
    resumed.train()
    _assert_same(_weights(resumed), _weights(full))
    assert sorted(p.name for p in (tmp_path / "b").glob("*.pth")) == ["epoch_2.pth", "epoch_3.pth"]


def test_resume_follows_the_last_checkpoint_pointer(tmp_path: Path) -> None:
    Runner(toy_config(tmp_path, max_epochs=3)).train()
    # the newest file is epoch_3.pth; the pointer (here relative to work_dir) names epoch_2.pth
    (tmp_path / "last_checkpoint").write_text("epoch_2.pth", encoding="utf-8")
    resumed = Runner(toy_config(tmp_path, max_epochs=3, resume=True))
    assert (resumed.epoch, resumed.iter) == (2, 2 * ITERS_PER_EPOCH)
    _assert_same(_weights(resumed), _load(tmp_path / "epoch_2.pth")["state_dict"])


# ----------------------------------------------------------------------------------------------
# Checkpoints that do not fit
# ----------------------------------------------------------------------------------------------
def test_resume_from_another_model_lists_shape_mismatches(tmp_path: Path) -> None:
    Runner(toy_config(tmp_path, max_epochs=1)).train()  # ToyModel(hidden=8)
    before = _files(tmp_path)
    wider = toy_config(tmp_path, max_epochs=2, model=lazy(ToyModel, dim=4, hidden=16), resume=True)
    with pytest.raises(ConfigError) as info:
        Runner(wider)
    messages = sorted(p.message for p in info.value.problems)
    assert messages == [
        "net.0.bias: checkpoint shape [8], model shape [16]",
        "net.0.weight: checkpoint shape [8, 4], model shape [16, 4]",
        "net.2.weight: checkpoint shape [2, 8], model shape [2, 16]",
    ]
    assert {p.path for p in info.value.problems} == {"resume"}
    assert "epoch_1.pth" in info.value.title
    assert _files(tmp_path) == before  # nothing trained, nothing written


def test_resume_with_another_optimizer_structure_names_the_optimizer(tmp_path: Path) -> None:
    Runner(toy_config(tmp_path, max_epochs=1)).train()  # one parameter group
    before = _files(tmp_path)
    per_parameter = OptimWrapper(optimizer=SGD(lr=0.1), paramwise_cfg=ParamwiseCfg())  # one group per parameter
    with pytest.raises(ConfigError) as info:
        Runner(toy_config(tmp_path, max_epochs=2, optim_wrapper=per_parameter, resume=True))
    assert len(info.value.problems) == 1
    problem = info.value.problems[0]
    assert problem.path == "resume"
    assert "optimizer" in problem.message and "parameter groups" in problem.message
    assert _files(tmp_path) == before


def test_resume_from_a_truncated_checkpoint_is_a_config_error(tmp_path: Path) -> None:
    Runner(toy_config(tmp_path, max_epochs=1)).train()
    path = tmp_path / "epoch_1.pth"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ConfigError) as info:
        Runner(toy_config(tmp_path, max_epochs=2, resume=True))
    assert [p.path for p in info.value.problems] == ["resume"]
    assert "cannot load checkpoint" in info.value.problems[0].message
    assert "epoch_1.pth" in info.value.problems[0].message


# ----------------------------------------------------------------------------------------------
# Resuming with a changed config
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("new_lr", "new_milestones", "expected_lines"),
    [
        pytest.param(
            0.1,
            [2, 5],
            ["param_scheduler[0].milestones: [3] -> [2, 5]", "train_cfg.max_epochs: 4 -> 6"],
            id="longer-run-new-milestones",
        ),
        pytest.param(
            0.05,
            [3],
            ["optim_wrapper.optimizer.lr: 0.1 -> 0.05", "train_cfg.max_epochs: 4 -> 6"],
            id="longer-run-other-lr",
        ),
    ],
)
def test_resume_with_a_changed_config_reports_it_and_follows_the_new_schedule(
    tmp_path: Path, new_lr: float, new_milestones: list[int], expected_lines: list[str]
) -> None:
    gamma = 0.1
    Runner(
        toy_config(
            tmp_path,
            max_epochs=4,
            optim_wrapper=OptimWrapper(optimizer=SGD(lr=0.1)),
            param_scheduler=[MultiStepLR(milestones=[3], gamma=gamma)],
        )
    ).train()

    lr = LrHook()
    resumed = Runner(
        toy_config(
            tmp_path,
            max_epochs=6,
            optim_wrapper=OptimWrapper(optimizer=SGD(lr=new_lr)),
            param_scheduler=[MultiStepLR(milestones=new_milestones, gamma=gamma)],
            resume=True,
        )
    )
    assert resumed.epoch == 4
    findings = [p for p in resumed.check() if p.stage == "resume"]
    assert all(p.severity == "warning" and p.path == "resume" for p in findings)
    assert [p.message.removeprefix("differs from the checkpoint's config: ") for p in findings] == expected_lines

    # The new schedule from the resumed position: base_lr * gamma ** (new milestones already passed).
    def expected_lr(epoch: int) -> float:
        return new_lr * gamma ** sum(1 for m in new_milestones if m <= epoch)

    assert _optim(resumed).get_lr()[0] == pytest.approx(expected_lr(4), rel=1e-12)
    resumed.register_hook(lr)
    resumed.train()  # warnings are logged, not raised
    assert lr.per_epoch == pytest.approx([expected_lr(4), expected_lr(5)], rel=1e-12)
    assert _optim(resumed).get_lr()[0] == pytest.approx(expected_lr(6), rel=1e-12)
    assert resumed.epoch == 6
    assert [p.message for p in resumed.findings if p.stage == "resume"] == [p.message for p in findings]
    assert expected_lines[-1] in (tmp_path / "run.log").read_text(encoding="utf-8")


# ----------------------------------------------------------------------------------------------
# CheckpointHook options
# ----------------------------------------------------------------------------------------------
def test_iteration_checkpoints_every_interval(tmp_path: Path) -> None:
    hooks = DefaultHooks(checkpoint=CheckpointHook(by_epoch=False, interval=3))
    Runner(toy_config(tmp_path, max_epochs=2, default_hooks=hooks)).train()  # 8 iterations
    assert sorted(p.name for p in tmp_path.glob("*.pth")) == ["iter_3.pth", "iter_6.pth", "iter_8.pth"]
    positions = {
        name: tuple(_load(tmp_path / name)["meta"][k] for k in ("epoch", "iter", "inner_iter"))
        for name in ("iter_3.pth", "iter_6.pth", "iter_8.pth")
    }
    assert positions == {"iter_3.pth": (0, 3, 3), "iter_6.pth": (1, 6, 2), "iter_8.pth": (1, 8, 4)}
    assert _pointer(tmp_path).name == "iter_8.pth"


SCRIPT = [50.0, 80.0, 70.0, 40.0, 90.0]  # validation scores of epochs 1..5


@pytest.mark.parametrize(
    ("save_best", "rule", "key", "improved_at"),
    [
        pytest.param("accuracy", None, "accuracy", [1, 2, 5], id="accuracy-greater-inferred"),
        pytest.param("accuracy", "less", "accuracy", [1, 4], id="rule-less-inverts"),
        pytest.param("auto", None, "accuracy", [1, 2, 5], id="auto-first-metric"),
        pytest.param("auto", None, "error", [1, 4], id="auto-error-is-less"),
    ],
)
def test_save_best_rewrites_only_on_improvement(
    tmp_path: Path, save_best: str, rule: Any, key: str, improved_at: list[int]
) -> None:
    best_file = tmp_path / f"best_{key}.pth"
    watcher = BestFileHook(best_file)
    cfg = toy_config(
        tmp_path,
        max_epochs=5,
        val_evaluator=Evaluator(metrics=[lazy(ScriptedMetric, key=key, values=SCRIPT)]),
        default_hooks=DefaultHooks(checkpoint=CheckpointHook(save_best=save_best, rule=rule)),
    )
    runner = Runner(cfg)
    runner.register_hook(EpochToMetric())
    runner.register_hook(watcher)
    runner.train()

    assert [m[key] for m in watcher.metrics] == SCRIPT
    expected = []
    last = 0
    for epoch in range(1, 6):
        last = epoch if epoch in improved_at else last
        expected.append((last, {key: SCRIPT[last - 1]}))
    assert watcher.seen == expected
    assert sorted(p.name for p in tmp_path.glob("best_*.pth")) == [best_file.name]


def test_filename_template(tmp_path: Path) -> None:
    hooks = DefaultHooks(checkpoint=CheckpointHook(filename_tmpl="ckpt_{}.pth"))
    Runner(toy_config(tmp_path, max_epochs=2, default_hooks=hooks)).train()
    assert sorted(p.name for p in tmp_path.glob("*.pth")) == ["ckpt_1.pth", "ckpt_2.pth"]
    assert _pointer(tmp_path) == (tmp_path / "ckpt_2.pth").resolve()


def test_out_dir_holds_the_checkpoints_and_resume_follows_the_pointer(tmp_path: Path) -> None:
    work_dir, out_dir = tmp_path / "run", tmp_path / "ckpts"
    hooks = DefaultHooks(checkpoint=CheckpointHook(out_dir=str(out_dir), save_best="accuracy"))
    first = Runner(toy_config(work_dir, max_epochs=2, default_hooks=hooks))
    first.train()
    assert sorted(p.name for p in out_dir.iterdir()) == ["best_accuracy.pth", "epoch_1.pth", "epoch_2.pth"]
    assert list(work_dir.glob("*.pth")) == []
    assert _pointer(work_dir) == (out_dir / "epoch_2.pth").resolve()
    assert (work_dir / "scalars.jsonl").is_file()  # logs stay in work_dir

    resumed = Runner(toy_config(work_dir, max_epochs=3, default_hooks=hooks, resume=True))
    assert (resumed.epoch, resumed.iter) == (2, 2 * ITERS_PER_EPOCH)
    _assert_same(_weights(resumed), _weights(first))


def test_published_checkpoint_holds_only_the_published_keys(tmp_path: Path) -> None:
    hooks = DefaultHooks(checkpoint=CheckpointHook(published_keys=["meta", "state_dict"]))
    runner = Runner(toy_config(tmp_path, max_epochs=2, default_hooks=hooks))
    runner.train()
    published = torch.load(tmp_path / "epoch_2_published.pth", map_location="cpu", weights_only=True)
    assert set(published) == {"meta", "state_dict"}
    full = _load(tmp_path / "epoch_2.pth")
    _assert_same(published["state_dict"], full["state_dict"])
    _assert_same(published["state_dict"], _weights(runner))
    assert published["meta"] == full["meta"]
    assert sorted(p.name for p in tmp_path.glob("*published*")) == ["epoch_2_published.pth"]
    assert _pointer(tmp_path).name == "epoch_2.pth"  # the pointer still names the full checkpoint


def test_max_keep_ckpts_with_iteration_checkpoints(tmp_path: Path) -> None:
    hooks = DefaultHooks(checkpoint=CheckpointHook(by_epoch=False, interval=2, max_keep_ckpts=2))
    Runner(toy_config(tmp_path, max_epochs=2, default_hooks=hooks)).train()  # saves at 2, 4, 6, 8
    assert sorted(p.name for p in tmp_path.glob("*.pth")) == ["iter_6.pth", "iter_8.pth"]
    assert _pointer(tmp_path).name == "iter_8.pth"


def test_max_keep_ckpts_survives_a_resume(tmp_path: Path) -> None:
    hooks = DefaultHooks(checkpoint=CheckpointHook(max_keep_ckpts=2))
    _interrupted_run(toy_config(tmp_path, max_epochs=4, default_hooks=hooks), Interrupt(epochs=2))
    assert sorted(p.name for p in tmp_path.glob("*.pth")) == ["epoch_1.pth", "epoch_2.pth"]
    Runner(toy_config(tmp_path, max_epochs=4, default_hooks=hooks, resume=True)).train()
    assert sorted(p.name for p in tmp_path.glob("*.pth")) == ["epoch_3.pth", "epoch_4.pth"]


def _best_run(work_dir: Path, script: list[float], **extra: Any) -> RunnerConfig:
    return toy_config(
        work_dir,
        max_epochs=4,
        val_evaluator=Evaluator(metrics=[lazy(ScriptedMetric, key="accuracy", values=script)]),
        default_hooks=DefaultHooks(checkpoint=CheckpointHook(save_best="accuracy")),
        **extra,
    )


def test_best_score_survives_a_resume(tmp_path: Path) -> None:
    # Crash at the end of epoch 2, before its validation: the best so far is epoch 1's 80.
    script = [80.0, 99.0, 70.0, 60.0]
    _interrupted_run(_best_run(tmp_path, script), Interrupt(epochs=2), EpochToMetric())
    assert _load(tmp_path / "best_accuracy.pth")["meta"]["epoch"] == 1
    watcher = BestFileHook(tmp_path / "best_accuracy.pth")
    resumed = Runner(_best_run(tmp_path, script, resume=True))
    resumed.register_hook(EpochToMetric())
    resumed.register_hook(watcher)
    resumed.train()
    # The resumed run first runs epoch 2's validation, which the crash prevented, then epochs 3 and 4.
    assert [m["accuracy"] for m in watcher.metrics] == [99.0, 70.0, 60.0]
    assert watcher.seen == [(2, {"accuracy": 99.0})] * 3  # 99 is the new best; 70 and 60 are not better


def test_best_score_of_the_last_validation_survives_a_resume(tmp_path: Path) -> None:
    # Crash during epoch 3, after epoch 2's validation set the best (90); resume from epoch_2.pth.
    script = [50.0, 90.0, 70.0, 60.0]
    _interrupted_run(_best_run(tmp_path, script), Interrupt(iters=2 * ITERS_PER_EPOCH + 2), EpochToMetric())
    assert _load(tmp_path / "best_accuracy.pth")["meta"]["epoch"] == 2
    assert _pointer(tmp_path).name == "epoch_2.pth"
    resumed = Runner(_best_run(tmp_path, script, resume=True))
    resumed.register_hook(EpochToMetric())
    resumed.train()
    best = _load(tmp_path / "best_accuracy.pth")
    assert best["meta"]["epoch"] == 2
    assert best["hooks"]["CheckpointHook"]["best"] == {"accuracy": 90.0}
