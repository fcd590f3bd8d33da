"""The iteration-based loop, and what happens around each optimizer step: gradient accumulation,
mixed precision, gradient clipping, per-parameter multipliers and lr scaling with the batch size."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from typedrunner import ConfigError, lazy
from typedrunner.config import (
    SGD,
    AutoScaleLR,
    CheckpointHook,
    ClipGrad,
    DataLoader,
    DefaultHooks,
    DefaultSampler,
    LoggerHook,
    MultiStepLR,
    OptimWrapper,
    ParamMult,
    ParamwiseCfg,
    RunnerConfig,
    TrainLoop,
    ValLoop,
)
from typedrunner.hooks import Hook, RunView
from typedrunner.model import BaseModel
from typedrunner.parts.optim import AmpOptimWrapper
from typedrunner.parts.optim import OptimWrapper as BuiltOptimWrapper
from typedrunner.runner import Runner
from typedrunner.testing import RecordingHook, ToyDataset, ToyModel, toy_config

SIZE = 64  # toy_config's training set


# ----------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------
class BatchHook(Hook):
    """Every training batch's inputs, the losses, and the weights after each iteration."""

    def __init__(self) -> None:
        self.inputs: list[Tensor] = []
        self.losses: list[Tensor] = []
        self.weights: list[dict[str, Tensor]] = []

    def after_train_iter(
        self, runner: RunView, batch_idx: int, data_batch: Any = None, outputs: Mapping[str, Tensor] | None = None
    ) -> None:
        assert outputs is not None
        self.inputs.append(data_batch[0].clone())
        self.losses.append(outputs["loss"].detach().clone())
        self.weights.append(_weights(runner.model))


class MetricsHook(Hook):
    """Every validation's metrics, with the iteration it ran at."""

    priority = "LOWEST"

    def __init__(self) -> None:
        self.at: list[tuple[int, dict[str, float]]] = []

    def after_val_epoch(self, runner: RunView, metrics: Mapping[str, float] | None = None) -> None:
        self.at.append((runner.iter, dict(metrics or {})))


class AutocastModel(ToyModel):
    """ToyModel that records, in each training forward, the autocast state and the logits' dtype."""

    def __init__(self, dim: int = 4, hidden: int = 8) -> None:
        super().__init__(dim=dim, hidden=hidden)
        self.seen: list[tuple[bool, torch.dtype, torch.dtype]] = []

    def forward(self, data: Tensor, labels: Tensor, mode: str = "tensor") -> Any:
        if mode == "loss":
            logits = self.net(data)
            self.seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu"), logits.dtype))
        return super().forward(data, labels, mode)


class ForgetProbeForwards(Hook):
    """Clears AutocastModel's record when training starts (the contract probe ran one forward before)."""

    def before_train(self, runner: RunView) -> None:
        assert isinstance(runner.model, AutocastModel)
        runner.model.seen.clear()


class NormModel(BaseModel):
    """Linear -> BatchNorm -> ReLU -> LayerNorm -> Linear, with names the paramwise rules can tell apart."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.bn = nn.BatchNorm1d(8)
        self.ln = nn.LayerNorm(8)
        self.head = nn.Linear(8, 2)

    def forward(self, data: Tensor, labels: Tensor, mode: str = "tensor") -> Any:
        logits = self.head(self.ln(F.relu(self.bn(self.fc1(data)))))
        if mode == "loss":
            return {"loss": F.cross_entropy(logits, labels)}
        if mode == "predict":
            return logits.softmax(dim=1), labels
        return logits


@pytest.fixture
def cpu_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Runner picks CUDA when there is one: these tests are about a CPU-only machine."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def _weights(model: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _optim(runner: Runner) -> BuiltOptimWrapper:
    assert isinstance(runner.optim_wrapper, BuiltOptimWrapper)
    return runner.optim_wrapper


def _in_order(batch_size: int) -> DataLoader:
    return DataLoader(
        dataset=lazy(ToyDataset, size=SIZE, seed=0), sampler=DefaultSampler(shuffle=False), batch_size=batch_size
    )


def _train_records(work_dir: Path) -> list[dict[str, Any]]:
    lines = (work_dir / "scalars.jsonl").read_text(encoding="utf-8").splitlines()
    return [record for record in map(json.loads, lines) if record["mode"] == "train"]


def _sgd_config(work_dir: Path, **overrides: Any) -> RunnerConfig:
    """Data in order, plain SGD, no checkpoints: a run a hand-written loop can repeat."""
    values: dict[str, Any] = dict(
        train_dataloader=_in_order(16),
        optim_wrapper=OptimWrapper(optimizer=SGD(lr=1.0)),
        default_hooks=DefaultHooks(checkpoint=None),
    )
    values.update(overrides)
    return toy_config(work_dir, max_epochs=1, **values)


# ----------------------------------------------------------------------------------------------
# IterBasedTrainLoop
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("val_begin", "val_interval", "validated_at"),
    [
        (1, 4, [4, 8, 10]),  # multiples of the interval, and the end
        (5, 4, [8, 10]),  # not before val_begin
        (1, 5, [5, 10]),  # the end is a multiple: validated once
    ],
)
def test_iteration_loop_runs_max_iters_over_several_passes(
    tmp_path: Path, val_begin: int, val_interval: int, validated_at: list[int]
) -> None:
    recorder, batches, metrics = RecordingHook(), BatchHook(), MetricsHook()
    cfg = toy_config(
        tmp_path,
        seed=2,
        train_cfg=TrainLoop(by_epoch=False, max_iters=10, val_begin=val_begin, val_interval=val_interval),
        default_hooks=DefaultHooks(checkpoint=CheckpointHook(by_epoch=False, interval=5)),
        custom_hooks=[recorder, batches, metrics],
    )
    runner = Runner(cfg)
    assert runner.max_iters == 10
    runner.train()

    # exactly 10 iterations, over passes of 4 batches: runner.epoch is the pass
    assert runner.iter == 10
    after_iters = [(e, i) for name, e, i in recorder.calls if name == "after_train_iter"]
    assert after_iters == [(i // 4, i) for i in range(10)]
    assert runner.epoch == 2
    names = recorder.names()
    assert names.count("before_train_epoch") == names.count("after_train_epoch") == 1
    assert names[:3] == ["before_run", "before_train", "before_train_epoch"]
    assert names[-3:] == ["after_train_epoch", "after_train", "after_run"]

    # each pass is a new permutation of the whole dataset (DefaultSampler: seed + pass)
    data = ToyDataset(size=SIZE, seed=0).data
    for i, inputs in enumerate(batches.inputs):
        order = torch.randperm(SIZE, generator=torch.Generator().manual_seed(2 + i // 4))
        assert torch.equal(inputs, data[order[(i % 4) * 16 : (i % 4 + 1) * 16]]), f"iteration {i}"

    assert [i for name, _, i in recorder.calls if name == "before_val"] == validated_at
    assert [i for i, _ in metrics.at] == validated_at
    assert all(m.keys() == {"accuracy"} for _, m in metrics.at)
    assert runner.metric_history == [m for _, m in metrics.at]
    assert sorted(p.name for p in tmp_path.glob("*.pth")) == ["iter_10.pth", "iter_5.pth"]


# ----------------------------------------------------------------------------------------------
# Gradient accumulation
# ----------------------------------------------------------------------------------------------
def test_accumulating_two_batches_of_8_equals_one_batch_of_16(tmp_path: Path) -> None:
    accumulated = Runner(
        _sgd_config(
            tmp_path / "acc",
            train_cfg=TrainLoop(max_epochs=2),
            train_dataloader=_in_order(8),
            optim_wrapper=OptimWrapper(optimizer=SGD(lr=0.5), accumulative_counts=2),
        )
    )
    initial = _weights(accumulated.model)
    accumulated.train()
    whole = Runner(
        _sgd_config(
            tmp_path / "whole",
            train_cfg=TrainLoop(max_epochs=2),
            optim_wrapper=OptimWrapper(optimizer=SGD(lr=0.5)),
        )
    )
    whole_initial = _weights(whole.model)
    whole.train()

    assert accumulated.iter == 2 * whole.iter
    for key, value in _weights(accumulated.model).items():
        assert torch.equal(initial[key], whole_initial[key])  # same seed, same start
        assert not torch.allclose(value, initial[key])  # it trained
        assert torch.allclose(value, whole.model.state_dict()[key], atol=1e-6, rtol=0), key


def test_last_partial_accumulation_group_still_steps(tmp_path: Path) -> None:
    # 8 iterations of 8 samples, accumulating 3: groups of 3, 3 and a last one of 2.
    batches = BatchHook()
    runner = Runner(
        _sgd_config(
            tmp_path,
            train_dataloader=_in_order(8),
            optim_wrapper=OptimWrapper(optimizer=SGD(lr=0.5), accumulative_counts=3),
            custom_hooks=[batches],
        )
    )
    model = copy.deepcopy(runner.model)
    previous = _weights(runner.model)
    runner.train()

    changed = []
    for i, weights in enumerate(batches.weights, start=1):
        if any(not torch.equal(weights[k], previous[k]) for k in weights):
            changed.append(i)
        previous = weights
    assert changed == [3, 6, 8]  # the last iteration steps, with the partial group

    # By hand: each step's gradient is the mean loss of its group's batches.
    dataset = ToyDataset(size=SIZE, seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    for group in ([0, 1, 2], [3, 4, 5], [6, 7]):
        optimizer.zero_grad()
        for b in group:
            x, y = dataset.data[b * 8 : (b + 1) * 8], dataset.labels[b * 8 : (b + 1) * 8]
            loss = model(x, y, mode="loss")["loss"] / len(group)
            loss.backward()
        optimizer.step()
    for key, value in _weights(runner.model).items():
        assert torch.allclose(value, model.state_dict()[key], atol=1e-6, rtol=0), key


# ----------------------------------------------------------------------------------------------
# Mixed precision
# ----------------------------------------------------------------------------------------------
def test_amp_on_cpu_autocasts_to_bfloat16(tmp_path: Path, cpu_only: None) -> None:
    batches = BatchHook()
    cfg = toy_config(
        tmp_path,
        max_epochs=2,
        model=lazy(AutocastModel, dim=4, hidden=8),
        optim_wrapper=OptimWrapper(type="AmpOptimWrapper", optimizer=SGD(lr=0.1)),
        custom_hooks=[ForgetProbeForwards(), batches],
    )
    runner = Runner(cfg)
    wrapper = runner.optim_wrapper
    assert isinstance(wrapper, AmpOptimWrapper)
    assert wrapper.dtype == torch.bfloat16  # the default on CPU
    assert wrapper.scaler is None  # bfloat16 needs no loss scaling
    runner.train()

    assert isinstance(runner.model, AutocastModel)
    assert runner.model.seen == [(True, torch.bfloat16, torch.bfloat16)] * runner.iter
    assert len(batches.losses) == runner.iter == 8
    assert all(math.isfinite(loss.item()) for loss in batches.losses)
    assert all(p.dtype == torch.float32 for p in runner.model.parameters())  # master weights stay float32
    assert not torch.is_autocast_enabled("cpu")  # nothing leaks out of the step
    assert 0.0 <= runner.last_metrics["accuracy"] <= 100.0


def test_amp_float16_on_cpu_is_a_config_error(tmp_path: Path, cpu_only: None) -> None:
    cfg = toy_config(
        tmp_path / "run",
        optim_wrapper=OptimWrapper(type="AmpOptimWrapper", optimizer=SGD(lr=0.1), dtype="float16"),
    )
    with pytest.raises(ConfigError) as info:
        Runner(cfg)
    assert [p.path for p in info.value.problems] == ["optim_wrapper.dtype"]
    assert "bfloat16" in info.value.problems[0].message
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("setting", [{"dtype": "bfloat16"}, {"loss_scale": 512.0}])
def test_amp_settings_without_amp_optim_wrapper_are_a_config_error(tmp_path: Path, setting: dict[str, Any]) -> None:
    data = {"model": lazy(ToyModel, dim=4, hidden=8), "work_dir": str(tmp_path)}
    wrapper = {"optimizer": {"type": "SGD", "lr": 0.1}, **setting}
    with pytest.raises(ConfigError) as info:
        RunnerConfig.from_dict({**data, "optim_wrapper": wrapper})
    assert [p.path for p in info.value.problems] == ["optim_wrapper"]
    assert "AmpOptimWrapper" in info.value.problems[0].message
    amp = RunnerConfig.from_dict({**data, "optim_wrapper": {**wrapper, "type": "AmpOptimWrapper"}})
    assert not isinstance(amp.optim_wrapper, dict) and amp.optim_wrapper is not None
    assert amp.optim_wrapper.type == "AmpOptimWrapper"


def test_val_fp16_on_cpu_is_a_config_error(tmp_path: Path, cpu_only: None) -> None:
    with pytest.raises(ConfigError) as info:
        Runner(toy_config(tmp_path / "run", val_cfg=ValLoop(fp16=True)))
    assert [p.path for p in info.value.problems] == ["val_cfg.fp16"]
    assert "CUDA" in info.value.problems[0].message
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------------------------
# Gradient clipping
# ----------------------------------------------------------------------------------------------
def _first_step_by_hand(model: nn.Module) -> dict[str, Tensor]:
    """The gradient of the first batch (16 samples in order) at the model's weights."""
    dataset = ToyDataset(size=SIZE, seed=0)
    model.zero_grad()
    loss = model(dataset.data[:16], dataset.labels[:16], mode="loss")["loss"]
    loss.backward()
    return {name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None}


def test_clip_grad_by_norm(tmp_path: Path) -> None:
    max_norm = 0.05
    batches = BatchHook()
    runner = Runner(
        _sgd_config(
            tmp_path,
            optim_wrapper=OptimWrapper(optimizer=SGD(lr=1.0), clip_grad=ClipGrad(max_norm=max_norm)),
            default_hooks=DefaultHooks(checkpoint=None, logger=LoggerHook(interval=1)),
            custom_hooks=[batches],
        )
    )
    model = copy.deepcopy(runner.model)
    initial = _weights(runner.model)
    runner.train()

    grads = _first_step_by_hand(model)
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads.values()]))
    assert norm > 4 * max_norm  # the clip does something
    torch.nn.utils.clip_grad_norm_(list(model.parameters()), max_norm)
    after_first = batches.weights[0]
    steps = {name: initial[name] - after_first[name] for name in grads}  # SGD, lr 1: the step is the gradient
    for name, p in model.named_parameters():
        assert p.grad is not None
        assert torch.allclose(steps[name], p.grad, atol=1e-7, rtol=1e-5), name
    step_norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(s) for s in steps.values()]))
    assert step_norm.item() <= max_norm * (1 + 1e-5)
    assert step_norm.item() == pytest.approx(max_norm, rel=1e-4)

    records = _train_records(tmp_path)
    assert len(records) == runner.iter == 4
    assert all(math.isfinite(r["grad_norm"]) and r["grad_norm"] > 0 for r in records)
    assert records[0]["grad_norm"] == pytest.approx(norm.item(), rel=1e-5)  # the norm before clipping


def test_clip_grad_by_value(tmp_path: Path) -> None:
    clip_value = 0.01
    batches = BatchHook()
    runner = Runner(
        _sgd_config(
            tmp_path,
            optim_wrapper=OptimWrapper(optimizer=SGD(lr=1.0), clip_grad=ClipGrad(type="value", clip_value=clip_value)),
            default_hooks=DefaultHooks(checkpoint=None, logger=LoggerHook(interval=1)),
            custom_hooks=[batches],
        )
    )
    model = copy.deepcopy(runner.model)
    initial = _weights(runner.model)
    runner.train()

    grads = _first_step_by_hand(model)
    assert max(g.abs().max().item() for g in grads.values()) > 2 * clip_value  # the clip does something
    after_first = batches.weights[0]
    for name, grad in grads.items():
        step = initial[name] - after_first[name]
        assert step.abs().max().item() <= clip_value * (1 + 1e-5), name
        assert torch.allclose(step, grad.clamp(-clip_value, clip_value), atol=1e-7, rtol=1e-5), name
    records = _train_records(tmp_path)
    assert len(records) == 4
    assert all("grad_norm" not in r for r in records)  # only clipping by norm measures the norm


# ----------------------------------------------------------------------------------------------
# paramwise_cfg
# ----------------------------------------------------------------------------------------------
def test_paramwise_cfg_sets_each_parameters_lr_and_decay(tmp_path: Path) -> None:
    lr, wd = 0.1, 0.01
    paramwise = ParamwiseCfg(
        bias_lr_mult=0.5,
        bias_decay_mult=0.0,
        norm_decay_mult=0.0,
        custom_keys={"head": ParamMult(lr_mult=0.1), "head.bias": ParamMult(lr_mult=2.0, decay_mult=0.5)},
    )
    runner = Runner(
        toy_config(
            tmp_path,
            model=lazy(NormModel),
            optim_wrapper=OptimWrapper(optimizer=SGD(lr=lr, weight_decay=wd), paramwise_cfg=paramwise),
        )
    )
    groups = _optim(runner).param_groups
    assert all(len(g["params"]) == 1 for g in groups)
    named = dict(runner.model.named_parameters())
    assert all(g["params"][0] is named[g["name"]] for g in groups)
    got = {f"{g['name']}/{key}": g[key] for g in groups for key in ("lr", "weight_decay")}
    pairs = {
        "fc1.weight": (lr, wd),
        "fc1.bias": (lr * 0.5, 0.0),  # bias: bias_lr_mult, bias_decay_mult
        "bn.weight": (lr, 0.0),  # norm layers: norm_decay_mult
        "bn.bias": (lr, 0.0),  # a norm layer's bias is a norm parameter (no bias_lr_mult)
        "ln.weight": (lr, 0.0),
        "ln.bias": (lr, 0.0),
        "head.weight": (lr * 0.1, wd),  # custom key "head"
        "head.bias": (lr * 2.0, wd * 0.5),  # the longest matching key wins, over the bias rule too
    }
    expected = {
        f"{name}/{key}": value
        for name, pair in pairs.items()
        for key, value in zip(("lr", "weight_decay"), pair, strict=True)
    }
    assert got == pytest.approx(expected, rel=1e-12)  # flat: newer pytest refuses nested containers
    runner.train()  # the groups train


def test_paramwise_lr_mult_zero_freezes_those_parameters(tmp_path: Path) -> None:
    paramwise = ParamwiseCfg(custom_keys={"fc1": ParamMult(lr_mult=0.0, decay_mult=0.0)})
    runner = Runner(
        toy_config(
            tmp_path,
            model=lazy(NormModel),
            optim_wrapper=OptimWrapper(optimizer=SGD(lr=0.1, weight_decay=0.01), paramwise_cfg=paramwise),
        )
    )
    before = _weights(runner.model)
    runner.train()
    after = _weights(runner.model)
    assert torch.equal(after["fc1.weight"], before["fc1.weight"])
    assert torch.equal(after["fc1.bias"], before["fc1.bias"])
    assert not torch.equal(after["head.weight"], before["head.weight"])
    assert not torch.equal(after["ln.weight"], before["ln.weight"])


# ----------------------------------------------------------------------------------------------
# auto_scale_lr
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("auto_scale_lr", "expected_lr"),
    [
        (AutoScaleLR(enable=True, base_batch_size=32), 0.05),  # batch 16 of 32: half
        (AutoScaleLR(enable=True, base_batch_size=8), 0.2),  # batch 16 of 8: double
        (AutoScaleLR(enable=False, base_batch_size=8), 0.1),  # off
    ],
)
def test_auto_scale_lr_scales_with_the_batch_size(
    tmp_path: Path, auto_scale_lr: AutoScaleLR, expected_lr: float
) -> None:
    runner = Runner(
        toy_config(
            tmp_path,
            max_epochs=2,
            optim_wrapper=OptimWrapper(optimizer=SGD(lr=0.1)),
            param_scheduler=[MultiStepLR(milestones=[1], gamma=0.5)],
            auto_scale_lr=auto_scale_lr,
        )
    )
    assert _optim(runner).get_lr() == pytest.approx([expected_lr], rel=1e-12)
    runner.train()
    assert _optim(runner).get_lr() == pytest.approx([expected_lr * 0.5], rel=1e-12)  # the schedule starts from it
