"""The custom hooks (EMA, early stopping, cache emptying, buffer sync, profiling) in real runs."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor

from tests.helpers import ITERS, Weights, parameters_of, read_checkpoint, weights_close
from typedrunner.config import (
    CheckpointHook,
    DefaultHooks,
    Evaluator,
    TrainLoop,
)
from typedrunner.errors import ConfigError
from typedrunner.hooks import EarlyStoppingHook, EMAHook, EmptyCacheHook, Hook, ProfilerHook, RunView, SyncBuffersHook
from typedrunner.runner import Runner
from typedrunner.testing import (
    EpochToMetric,
    Interrupt,
    Interrupted,
    ScriptedMetric,
    ToyMetric,
    toy_config,
)


# ----------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------
class Trajectory(Hook):
    """The model's parameters after every iteration (priority LOWEST: after every other hook), and
    after every validation (once the hooks that swap weights for validation have swapped them back)."""

    priority = "LOWEST"

    def __init__(self) -> None:
        self.params: list[Weights] = []
        self.after_validation: list[Weights] = []

    def after_train_iter(
        self, runner: RunView, batch_idx: int, data_batch: Any = None, outputs: Mapping[str, Tensor] | None = None
    ) -> None:
        self.params.append(parameters_of(runner.model))

    def after_val_epoch(self, runner: RunView, metrics: Mapping[str, float] | None = None) -> None:
        self.after_validation.append(parameters_of(runner.model))


class WeightsMetric(ToyMetric):
    """ToyMetric that also records, in each ``process``, the weights of the model it validates."""

    def __init__(self) -> None:
        super().__init__()
        self.model: torch.nn.Module | None = None
        """Set by the test once the runner has built the model."""
        self.seen: list[Weights] = []

    def process(self, data_batch: Any, data_samples: Any) -> None:
        assert self.model is not None
        self.seen.append(parameters_of(self.model))
        super().process(data_batch, data_samples)


@pytest.fixture
def cpu_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about a CPU-only machine, whatever this one has."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def _equal(a: Weights, b: Weights) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _ema_weights(hook: EMAHook) -> Weights:
    assert hook.ema is not None
    return parameters_of(hook.ema.module)


def _hand_ema(trajectory: Sequence[Weights], updates: Sequence[int], momentum: float) -> Weights:
    """The average after updating at ``updates`` (iteration indices): the first update copies the
    weights (torch's AveragedModel), each later one is ``ema = (1 - momentum) * ema + momentum * w``."""
    ema: Weights | None = None
    for i in updates:
        weights = trajectory[i]
        ema = dict(weights) if ema is None else {k: (1 - momentum) * ema[k] + momentum * weights[k] for k in weights}
    assert ema is not None
    return ema


# ----------------------------------------------------------------------------------------------
# EMAHook
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("momentum", "interval", "begin_iter", "updates"),
    [
        (0.25, 1, 0, list(range(3 * ITERS))),  # every iteration
        (0.5, 3, 2, [2, 5, 8, 11]),  # from iteration 2 (0-based), every third
    ],
    ids=["every-iteration", "interval-3-from-2"],
)
def test_ema_is_the_moving_average_of_the_weights_and_validation_uses_it(
    tmp_path: Path, momentum: float, interval: int, begin_iter: int, updates: list[int]
) -> None:
    ema = EMAHook(momentum=momentum, interval=interval, begin_iter=begin_iter)
    trajectory, metric = Trajectory(), WeightsMetric()
    runner = Runner(
        toy_config(tmp_path, max_epochs=3, custom_hooks=[ema, trajectory], val_evaluator=Evaluator(metrics=[metric]))
    )
    initial = parameters_of(runner.model)
    metric.model = runner.model
    runner.train()
    assert len(trajectory.params) == 3 * ITERS

    # after training: the hand-computed average over the updates
    assert ema.ema is not None and int(ema.ema.n_averaged) == len(updates)
    final_ema = _ema_weights(ema)
    assert weights_close(final_ema, _hand_ema(trajectory.params, updates, momentum))
    assert not weights_close(final_ema, trajectory.params[-1])  # an average, not the last weights
    assert not weights_close(final_ema, initial)

    # each validation (after epochs 1, 2, 3) ran on the average so far; the model got its own back
    assert len(metric.seen) == 3
    for epoch, (validated, restored) in enumerate(zip(metric.seen, trajectory.after_validation, strict=True), start=1):
        done = [i for i in updates if i < epoch * ITERS]
        assert weights_close(validated, _hand_ema(trajectory.params, done, momentum)), epoch
        assert _equal(restored, trajectory.params[epoch * ITERS - 1]), epoch
    assert _equal(parameters_of(runner.model), trajectory.params[-1])


def test_ema_state_is_checkpointed_and_an_interrupted_run_resumes_it(tmp_path: Path) -> None:
    def ema_run(work_dir: Path, at: int | None, resume: bool) -> tuple[Runner, EMAHook, Trajectory]:
        ema, trajectory = EMAHook(momentum=0.3), Trajectory()
        runner = Runner(
            toy_config(work_dir, max_epochs=3, custom_hooks=[ema, trajectory, Interrupt(iters=at)], resume=resume)
        )
        try:
            runner.train()
        except Interrupted:
            assert at is not None
        return runner, ema, trajectory

    whole, whole_ema, whole_trajectory = ema_run(tmp_path / "whole", None, False)

    # epoch_1.pth holds the average of the first epoch's 4 iterations
    saved = read_checkpoint(tmp_path / "whole" / "epoch_1.pth")["hooks"]["EMAHook"]
    assert int(saved["n_averaged"]) == ITERS
    module = {k.removeprefix("module."): v for k, v in saved.items() if k.startswith("module.")}
    assert weights_close(module, _hand_ema(whole_trajectory.params, range(ITERS), 0.3))

    # crash in epoch 2 (after epoch_1.pth), resume: the same average and weights at the end, bit for bit
    ema_run(tmp_path / "split", ITERS + 2, False)
    resumed, resumed_ema, _ = ema_run(tmp_path / "split", None, True)
    assert resumed.iter == whole.iter == 3 * ITERS
    assert resumed_ema.ema is not None and whole_ema.ema is not None
    assert int(resumed_ema.ema.n_averaged) == int(whole_ema.ema.n_averaged) == 3 * ITERS
    assert _equal(_ema_weights(resumed_ema), _ema_weights(whole_ema))
    assert _equal(parameters_of(resumed.model), parameters_of(whole.model))


def test_ema_before_begin_iter_validates_the_initial_weights(tmp_path: Path) -> None:
    ema, metric = EMAHook(momentum=0.5, begin_iter=ITERS), WeightsMetric()
    runner = Runner(toy_config(tmp_path, max_epochs=1, custom_hooks=[ema], val_evaluator=Evaluator(metrics=[metric])))
    initial = parameters_of(runner.model)
    metric.model = runner.model
    runner.train()
    assert ema.ema is not None and int(ema.ema.n_averaged) == 0  # no update in the first epoch
    assert len(metric.seen) == 1 and _equal(metric.seen[0], initial)


# ----------------------------------------------------------------------------------------------
# EarlyStoppingHook
# ----------------------------------------------------------------------------------------------
def _stopping_run(
    work_dir: Path, hook: EarlyStoppingHook, key: str, script: Sequence[float], **overrides: Any
) -> Runner:
    values: dict[str, Any] = {
        "val_evaluator": Evaluator(metrics=[ScriptedMetric(key, script)]),
        "custom_hooks": [hook, EpochToMetric()],
        "default_hooks": DefaultHooks(checkpoint=None),
    }
    values.update(overrides)
    runner = Runner(toy_config(work_dir, max_epochs=len(script), **values))
    runner.train()
    return runner


@pytest.mark.parametrize(
    ("min_delta", "patience", "stopped_after", "best", "wait"),
    [
        # 60.5 and 61.0 do not beat 60 by 1.0: the second of them is the second without improvement
        (1.0, 2, 4, 60.0, 2),
        (1.0, 3, 5, 60.0, 3),  # 60 is the third
        (0.0, 2, 8, 95.0, 0),  # any increase counts: it never stops
    ],
)
def test_early_stopping_after_patience_validations_without_improvement(
    tmp_path: Path, min_delta: float, patience: int, stopped_after: int, best: float, wait: int
) -> None:
    script = [50.0, 60.0, 60.5, 61.0, 60.0, 80.0, 90.0, 95.0]
    hook = EarlyStoppingHook("accuracy", min_delta=min_delta, patience=patience)
    runner = _stopping_run(tmp_path, hook, "accuracy", script)
    assert hook.rule == "greater"  # inferred from the name
    assert runner.epoch == stopped_after
    assert runner.iter == stopped_after * ITERS
    assert [m["accuracy"] for m in runner.metric_history] == script[:stopped_after]
    assert (hook.best, hook.wait) == (best, wait)


def test_early_stopping_threshold_stops_at_once(tmp_path: Path) -> None:
    hook = EarlyStoppingHook("accuracy", stopping_threshold=90.0, patience=5)
    runner = _stopping_run(tmp_path, hook, "accuracy", [50.0, 70.0, 91.0, 95.0, 99.0])
    assert runner.epoch == 3  # 91 reaches 90, while still improving


@pytest.mark.parametrize(("check_finite", "stopped_after"), [(True, 2), (False, 5)])
def test_early_stopping_on_a_non_finite_metric(tmp_path: Path, check_finite: bool, stopped_after: int) -> None:
    hook = EarlyStoppingHook("accuracy", check_finite=check_finite, patience=5)
    runner = _stopping_run(tmp_path, hook, "accuracy", [50.0, math.nan, 60.0, 70.0, 80.0])
    assert runner.epoch == stopped_after
    assert hook.best == (50.0 if check_finite else 80.0)


def test_early_stopping_infers_less_for_a_loss(tmp_path: Path) -> None:
    # as a loss (less is better): 0.5 improves on 1.0; 0.45 and 0.48 do not by 0.1 -> stop after 4
    # (read as greater-is-better, 0.5 and 0.45 would already be two without improvement -> stop after 3)
    hook = EarlyStoppingHook("val_loss", min_delta=0.1, patience=2)
    runner = _stopping_run(tmp_path, hook, "val_loss", [1.0, 0.5, 0.45, 0.48, 0.2, 0.1])
    assert hook.rule == "less"
    assert runner.epoch == 4
    assert (hook.best, hook.wait) == (0.5, 2)


def test_early_stopping_in_an_iteration_run_stops_at_that_validation(tmp_path: Path) -> None:
    hook = EarlyStoppingHook("accuracy", stopping_threshold=90.0)
    runner = Runner(
        toy_config(
            tmp_path,
            train_cfg=TrainLoop(by_epoch=False, max_iters=12, val_interval=2),
            val_evaluator=Evaluator(metrics=[ScriptedMetric("accuracy", [95.0])]),
            custom_hooks=[hook],
            default_hooks=DefaultHooks(checkpoint=None),
        )
    )
    runner.train()
    assert runner.iter == 2  # the first validation stopped it


STOPPING_SCRIPT = [50.0, 60.0, 60.5, 61.0, 60.0, 59.0, 58.0, 57.0]
"""With min_delta 1.0 and patience 3: 60.5, 61 and 60 do not improve on 60, so a whole run stops after epoch 5."""


def _stopping_resume_run(
    work_dir: Path, at: int | None, resume: bool, checkpoint: CheckpointHook
) -> tuple[Runner, EarlyStoppingHook]:
    hook = EarlyStoppingHook("accuracy", min_delta=1.0, patience=3)
    runner = Runner(
        toy_config(
            work_dir,
            max_epochs=len(STOPPING_SCRIPT),
            val_evaluator=Evaluator(metrics=[ScriptedMetric("accuracy", STOPPING_SCRIPT)]),
            custom_hooks=[hook, EpochToMetric(), Interrupt(iters=at)],
            default_hooks=DefaultHooks(checkpoint=checkpoint),
            resume=resume,
        )
    )
    try:
        runner.train()
    except Interrupted:
        assert at is not None
    return runner, hook


def test_early_stopping_state_is_checkpointed_and_resumed(tmp_path: Path) -> None:
    # A checkpoint in the middle of epoch 4 (iteration 14) holds the state after validations 1-3:
    # best 60, one without improvement (60.5). Crash at iteration 15 and resume from it.
    checkpoint = CheckpointHook(by_epoch=False, interval=14)
    whole, whole_hook = _stopping_resume_run(tmp_path / "whole", None, False, checkpoint)
    assert whole.epoch == 5 and (whole_hook.best, whole_hook.wait) == (60.0, 3)

    _stopping_resume_run(tmp_path / "split", 15, False, checkpoint)
    assert read_checkpoint(tmp_path / "split" / "iter_14.pth")["hooks"]["EarlyStoppingHook"] == {
        "best": 60.0,
        "wait": 1,
    }
    resumed, hook = _stopping_resume_run(tmp_path / "split", None, True, checkpoint)
    # 61 (epoch 4) and 60 (epoch 5) are the second and third without improvement: it stops as the
    # whole run does (a hook starting afresh would take 61 as its best and go on)
    assert [m["accuracy"] for m in resumed.metric_history] == [61.0, 60.0]
    assert resumed.epoch == whole.epoch == 5
    assert (hook.best, hook.wait) == (whole_hook.best, whole_hook.wait)


def test_early_stopping_resumed_from_an_epoch_checkpoint_stops_where_the_whole_run_does(tmp_path: Path) -> None:
    checkpoint = CheckpointHook()
    whole, _ = _stopping_resume_run(tmp_path / "whole", None, False, checkpoint)
    assert whole.epoch == 5
    # crash in epoch 4, after epoch 3's validation (60.5: the first without improvement), which
    # epoch_3.pth (written before it) does not know about
    _stopping_resume_run(tmp_path / "split", 3 * ITERS + 1, False, checkpoint)
    resumed, _ = _stopping_resume_run(tmp_path / "split", None, True, checkpoint)
    assert resumed.epoch == whole.epoch


# ----------------------------------------------------------------------------------------------
# EmptyCacheHook, SyncBuffersHook
# ----------------------------------------------------------------------------------------------
def test_cuda_and_distributed_hooks_register_for_nothing_on_one_cpu_process(tmp_path: Path, cpu_only: None) -> None:
    hooks = [EmptyCacheHook(before_epoch=True, after_iter=True), SyncBuffersHook()]
    runner = Runner(toy_config(tmp_path, max_epochs=2, custom_hooks=hooks))
    listed = {name for names in runner.hooks.order().values() for name in names}
    assert "EmptyCacheHook" not in listed and "SyncBuffersHook" not in listed
    assert "ParamSchedulerHook" in listed  # order() does list the hooks that handle events
    assert all(hook in runner.hooks.hooks for hook in hooks)
    runner.train()
    assert runner.iter == 2 * ITERS and runner.epoch == 2


def test_empty_cache_hook_events_follow_its_flags_when_cuda_is_there(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert EmptyCacheHook().events() == {"after_train_epoch", "after_val_epoch"}
    assert EmptyCacheHook(before_epoch=True, after_epoch=False, after_iter=True).events() == {
        "before_train_epoch",
        "after_train_iter",
    }


# ----------------------------------------------------------------------------------------------
# ProfilerHook
# ----------------------------------------------------------------------------------------------
class TraceWatcher(Hook):
    """Whether the profiler's trace exists after each iteration and epoch (after the ProfilerHook)."""

    priority = "LOWEST"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.after_iter: list[bool] = []
        self.after_epoch: list[bool] = []

    def after_train_iter(
        self, runner: RunView, batch_idx: int, data_batch: Any = None, outputs: Mapping[str, Tensor] | None = None
    ) -> None:
        self.after_iter.append(self.path.is_file())

    def after_train_epoch(self, runner: RunView) -> None:
        self.after_epoch.append(self.path.is_file())


@pytest.mark.parametrize(
    ("by_epoch", "profile_times", "after_iter", "after_epoch"),
    [
        (False, 2, [False, True] + [True] * 6, [True, True]),
        (True, 1, [False] * 4 + [True] * 4, [True, True]),
    ],
    ids=["2-iterations", "1-epoch"],
)
def test_profiler_writes_a_chrome_trace(
    tmp_path: Path, by_epoch: bool, profile_times: int, after_iter: list[bool], after_epoch: list[bool]
) -> None:
    trace = tmp_path / "profiler" / "trace.json"
    watcher = TraceWatcher(trace)
    hook = ProfilerHook(by_epoch=by_epoch, profile_times=profile_times)
    runner = Runner(toy_config(tmp_path, max_epochs=2, custom_hooks=[hook, watcher]))
    runner.train()
    assert watcher.after_iter == after_iter
    assert watcher.after_epoch == after_epoch
    assert hook.trace_path == str(trace)
    with trace.open(encoding="utf-8") as f:
        data = json.load(f)
    events = data["traceEvents"]
    assert isinstance(events, list) and events
    names = {str(e.get("name", "")) for e in events}
    assert any(name.startswith("aten::") for name in names)  # torch ops were recorded


@pytest.mark.parametrize(
    ("saved", "named"), [({"best": "abc", "wait": 1}, "best"), ({"best": 60.0, "wait": -2}, "wait")]
)
def test_early_stopping_refuses_a_malformed_saved_state(tmp_path: Path, saved: dict[str, Any], named: str) -> None:
    checkpoint = CheckpointHook(by_epoch=False, interval=14)
    _stopping_resume_run(tmp_path, 15, False, checkpoint)
    state = read_checkpoint(tmp_path / "iter_14.pth")
    state["hooks"]["EarlyStoppingHook"] = saved
    torch.save(state, tmp_path / "iter_14.pth")
    with pytest.raises(ConfigError) as refused:
        _stopping_resume_run(tmp_path, None, True, checkpoint)
    assert "EarlyStoppingHook" in str(refused.value) and named in str(refused.value), str(refused.value)
