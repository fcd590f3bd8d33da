"""Every schedule's learning-rate (and momentum) curve, seen by a hook in a real run, against the
closed form written here from the schedule's definition (never by asking torch): by epoch and by
iteration, in windows, chained, defaulted to the run's length, on a validation metric, on the
momentum; the cross-field checks on schedules; and a resumed run that follows the same curve.

Window semantics pinned here: a schedule's step ``t`` applies at epoch (or iteration) ``begin + t``,
for ``t`` up to ``end - begin``; its value at ``end`` (the schedule's end point: a cosine's
``eta_min``, a warm-up's ``end_factor``, a ``ConstantLR`` restored) is then held to the end of the run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor

from typedrunner import ConfigError, ContractError, RunnerConfig, lazy
from typedrunner.config import SGD, Adam, CheckpointHook, DefaultHooks, Evaluator, OptimWrapper, TrainLoop
from typedrunner.config import scheduler as S
from typedrunner.hooks import Hook
from typedrunner.runner import Runner
from typedrunner.testing import EpochToMetric, Interrupt, Interrupted, ScriptedMetric, ToyModel, toy_config

ITERS = 4  # toy_config: 64 training samples, batch 16
LR = 0.1
MOMENTUM = 0.9
BETA2 = 0.999

Curve = Callable[[int], float]
"""A schedule's value at step ``t`` (epochs or iterations since its ``begin``)."""


def approx(expected: Any) -> Any:
    """Equal up to float rounding (torch computes most schedules recursively, step by step)."""
    return pytest.approx(expected, rel=1e-6, abs=1e-9)


# ----------------------------------------------------------------------------------------------
# Closed forms, from each schedule's definition
# ----------------------------------------------------------------------------------------------
def multistep(base: float, milestones: Sequence[int], gamma: float) -> Curve:
    return lambda t: base * gamma ** sum(1 for m in milestones if t >= m)


def step(base: float, size: int, gamma: float) -> Curve:
    return lambda t: base * gamma ** (t // size)


def exponential(base: float, gamma: float) -> Curve:
    return lambda t: base * gamma**t


def cosine(base: float, period: int, eta_min: float = 0.0) -> Curve:
    return lambda t: eta_min + (base - eta_min) * (1 + math.cos(math.pi * t / period)) / 2


def linear(base: float, start: float, end: float, total: int) -> Curve:
    return lambda t: base * (start + (end - start) * min(t, total) / total)


def constant(base: float, factor: float, total: int) -> Curve:
    return lambda t: base * factor if t < total else base


def poly(base: float, power: float, total: int) -> Curve:
    return lambda t: base * (1 - min(t, total) / total) ** power


def _anneal(start: float, end: float, pct: float, strategy: str) -> float:
    if strategy == "linear":
        return start + (end - start) * pct
    return end + (start - end) / 2 * (1 + math.cos(math.pi * pct))


def one_cycle(
    max_value: float,
    total: int,
    pct_start: float = 0.3,
    div: float = 25.0,
    final_div: float = 1e4,
    strategy: str = "cos",
    momentum: tuple[float, float] | None = None,
) -> Curve:
    """The one-cycle policy: from ``max/div`` up to ``max`` at step ``pct_start * total - 1``, then down
    to ``max/div/final_div`` at step ``total - 1``. ``momentum=(low, high)``: the momentum instead,
    which goes the other way, ``high`` -> ``low`` -> ``high``."""
    peak, last = pct_start * total - 1, total - 1
    if momentum is None:
        start, top, end = max_value / div, max_value, max_value / div / final_div
    else:
        start, top, end = momentum[1], momentum[0], momentum[1]

    def value(t: int) -> float:
        if t <= peak:
            return _anneal(start, top, t / peak, strategy)
        return _anneal(top, end, (t - peak) / (last - peak), strategy)

    return value


def triangle(low: float, high: float, half: int) -> Curve:
    """CyclicLR's triangular mode: ``low`` -> ``high`` in ``half`` steps, back in ``half``, repeat."""

    def value(t: int) -> float:
        cycle = math.floor(1 + t / (2 * half))
        x = abs(t / half - 2 * cycle + 1)
        return low + (high - low) * max(0.0, 1 - x)

    return value


def warm_restarts(base: float, first: int, mult: int, eta_min: float) -> Curve:
    """Cosine annealing restarted after ``first``, ``first * mult``, ``first * mult**2``, ... steps."""

    def value(t: int) -> float:
        period = first
        while t >= period:
            t -= period
            period *= mult
        return eta_min + (base - eta_min) * (1 + math.cos(math.pi * t / period)) / 2

    return value


def windowed(curve: Curve, begin: int, end: int, before: float) -> Curve:
    """``curve`` in the window: unchanged before ``begin``, its value at ``end`` held after it."""
    return lambda k: before if k < begin else curve(min(k, end) - begin)


def per_iteration(curve: Curve, by_epoch: bool, iterations: int) -> list[float]:
    """The value each iteration sees, for a curve stepped per epoch or per iteration."""
    return [curve(i // ITERS if by_epoch else i) for i in range(iterations)]


def plateau(values: Sequence[float], factor: float, patience: int, threshold: float, greater: bool) -> list[float]:
    """The lr during each epoch, reduced on a plateau: a validation improves on the best when it beats
    it by a relative ``threshold``; the ``patience + 1``-th validation in a row that does not improve
    multiplies the lr by ``factor`` (from the next epoch) and starts the count again."""
    lr, best, bad = LR, None, 0
    lrs = []
    for value in values:
        lrs.append(lr)
        if best is None or (value > best * (1 + threshold) if greater else value < best * (1 - threshold)):
            best, bad = value, 0
            continue
        bad += 1
        if bad > patience:
            lr, bad = lr * factor, 0
    return lrs


# ----------------------------------------------------------------------------------------------
# Recorders, a scripted metric, an interruption
# ----------------------------------------------------------------------------------------------
class Seen(Hook):
    """The lr and momentum (SGD's ``momentum``, Adam's ``betas[0]``) each iteration trains with,
    read before anything else runs in the iteration."""

    priority = "HIGHEST"

    def __init__(self) -> None:
        self.lr: list[float] = []
        self.momentum: list[float] = []
        self.beta2: list[float] = []

    def before_train_iter(self, runner: Runner, batch_idx: int, data_batch: Any = None) -> None:
        group = _groups(runner)[0]
        self.lr.append(float(group["lr"]))
        if "betas" in group:
            self.momentum.append(float(group["betas"][0]))
            self.beta2.append(float(group["betas"][1]))
        else:
            self.momentum.append(float(group["momentum"]))


def _groups(runner: Runner) -> list[dict[str, Any]]:
    assert runner.optim_wrapper is not None
    return runner.optim_wrapper.param_groups


def _run(
    work_dir: Path,
    schedules: Sequence[Any],
    max_epochs: int,
    optimizer: Any = None,
    hooks: Sequence[Hook] = (),
    **overrides: Any,
) -> tuple[Runner, Seen]:
    """Train the toy model with ``schedules`` (no checkpoints unless asked); what each iteration saw."""
    seen = Seen()
    values: dict[str, Any] = {
        "optim_wrapper": OptimWrapper(optimizer=optimizer or SGD(lr=LR, momentum=MOMENTUM)),
        "param_scheduler": list(schedules),
        "default_hooks": DefaultHooks(checkpoint=None),
        "custom_hooks": [seen, *hooks],
    }
    values.update(overrides)
    runner = Runner(toy_config(work_dir, max_epochs=max_epochs, **values))
    runner.train()
    assert len(seen.lr) == runner.iter == runner.max_iters
    return runner, seen


def _model_weights(runner: Runner) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in runner.model.state_dict().items()}


# ----------------------------------------------------------------------------------------------
# Each typed schedule, over the whole run
# ----------------------------------------------------------------------------------------------
# (id, schedule, epochs, lr curve, momentum curve): curves of the step, per epoch or per iteration
# as the schedule says; None for a value the schedule leaves alone.
WHOLE_RUN: list[tuple[str, Any, int, Curve | None, Curve | None]] = [
    # by epoch, over 4 epochs (T_max / total_iters default to the 4 epochs)
    ("MultiStepLR", S.MultiStepLR(milestones=[1, 3], gamma=0.5), 4, multistep(LR, [1, 3], 0.5), None),
    ("StepLR", S.StepLR(step_size=2, gamma=0.3), 4, step(LR, 2, 0.3), None),
    ("ExponentialLR", S.ExponentialLR(gamma=0.8), 4, exponential(LR, 0.8), None),
    ("CosineAnnealingLR", S.CosineAnnealingLR(eta_min=0.01), 4, cosine(LR, 4, 0.01), None),
    ("LinearLR", S.LinearLR(start_factor=0.25), 4, linear(LR, 0.25, 1.0, 4), None),
    ("ConstantLR", S.ConstantLR(factor=0.5, total_iters=3), 4, constant(LR, 0.5, 3), None),
    ("PolyLR", S.PolyLR(power=2.0), 4, poly(LR, 2.0, 4), None),
    ("MultiStepMomentum", S.MultiStepMomentum(milestones=[2], gamma=0.5), 4, None, multistep(MOMENTUM, [2], 0.5)),
    ("StepMomentum", S.StepMomentum(step_size=3, gamma=0.5), 4, None, step(MOMENTUM, 3, 0.5)),
    ("ExponentialMomentum", S.ExponentialMomentum(gamma=0.9), 4, None, exponential(MOMENTUM, 0.9)),
    ("CosineAnnealingMomentum", S.CosineAnnealingMomentum(eta_min=0.5), 4, None, cosine(MOMENTUM, 4, 0.5)),
    ("LinearMomentum", S.LinearMomentum(start_factor=0.5), 4, None, linear(MOMENTUM, 0.5, 1.0, 4)),
    ("ConstantMomentum", S.ConstantMomentum(factor=0.5, total_iters=2), 4, None, constant(MOMENTUM, 0.5, 2)),
    ("PolyMomentum", S.PolyMomentum(power=0.5), 4, None, poly(MOMENTUM, 0.5, 4)),
    # by iteration, over 3 epochs of 4 iterations (T_max / total_iters / total_steps default to 12)
    (
        "MultiStepLR-iter",
        S.MultiStepLR(by_epoch=False, milestones=[3, 7, 8], gamma=0.5),
        3,
        multistep(LR, [3, 7, 8], 0.5),
        None,
    ),
    ("StepLR-iter", S.StepLR(by_epoch=False, step_size=5, gamma=0.5), 3, step(LR, 5, 0.5), None),
    ("ExponentialLR-iter", S.ExponentialLR(by_epoch=False, gamma=0.9), 3, exponential(LR, 0.9), None),
    ("CosineAnnealingLR-iter", S.CosineAnnealingLR(by_epoch=False), 3, cosine(LR, 12), None),
    (
        "LinearLR-iter",
        S.LinearLR(by_epoch=False, start_factor=0.1, end_factor=0.5, total_iters=5),
        3,
        linear(LR, 0.1, 0.5, 5),
        None,
    ),
    ("ConstantLR-iter", S.ConstantLR(by_epoch=False, factor=0.25, total_iters=5), 3, constant(LR, 0.25, 5), None),
    ("PolyLR-iter", S.PolyLR(by_epoch=False, power=1.5), 3, poly(LR, 1.5, 12), None),
    (
        "OneCycleLR-iter",  # cycles SGD's momentum too, 0.95 -> 0.85 -> 0.95 (torch's defaults)
        S.OneCycleLR(by_epoch=False, max_lr=0.5),
        3,
        one_cycle(0.5, 13),  # total_steps defaults to the window's 12 steps + 1: the cycle ends as the run does
        one_cycle(0.5, 13, momentum=(0.85, 0.95)),
    ),
    (
        "OneCycleLR-linear-iter",
        S.OneCycleLR(
            by_epoch=False, max_lr=0.3, pct_start=0.5, div_factor=10.0, anneal_strategy="linear", cycle_momentum=False
        ),
        2,
        one_cycle(0.3, 9, pct_start=0.5, div=10.0, strategy="linear"),
        None,
    ),
    (
        "CosineAnnealingMomentum-iter",  # T_max shorter than the run: torch's cosine is periodic
        S.CosineAnnealingMomentum(by_epoch=False, T_max=6),
        2,
        None,
        cosine(MOMENTUM, 6),
    ),
]


@pytest.mark.parametrize(
    ("schedule", "epochs", "lr_curve", "momentum_curve"),
    [pytest.param(*case[1:], id=case[0]) for case in WHOLE_RUN],
)
def test_each_schedule_follows_its_closed_form(
    tmp_path: Path, schedule: Any, epochs: int, lr_curve: Curve | None, momentum_curve: Curve | None
) -> None:
    _, seen = _run(tmp_path, [schedule], epochs)
    iterations = epochs * ITERS
    by_epoch = schedule.by_epoch
    expected_lr = per_iteration(lr_curve, by_epoch, iterations) if lr_curve else [LR] * iterations
    expected_momentum = (
        per_iteration(momentum_curve, by_epoch, iterations) if momentum_curve else [MOMENTUM] * iterations
    )
    assert seen.lr == approx(expected_lr)
    assert seen.momentum == approx(expected_momentum)
    assert len(set(seen.lr)) > 1 or len(set(seen.momentum)) > 1  # the schedule does something


# ----------------------------------------------------------------------------------------------
# Windows
# ----------------------------------------------------------------------------------------------
WINDOWS: list[tuple[str, Any, int, Curve]] = [
    # epochs 1..2, then held: the cosine reaches eta_min at end=3 and stays there
    ("cosine-epochs-1-3", S.CosineAnnealingLR(begin=1, end=3), 5, windowed(cosine(LR, 2), 1, 3, LR)),
    # the factor applies for total_iters (default end - begin = 2) epochs, then the lr is restored
    ("constant-epochs-1-3", S.ConstantLR(factor=0.5, begin=1, end=3), 5, windowed(constant(LR, 0.5, 2), 1, 3, LR)),
    # restored inside the window when total_iters is shorter
    (
        "constant-short-epochs-1-4",
        S.ConstantLR(factor=0.5, total_iters=1, begin=1, end=4),
        5,
        windowed(constant(LR, 0.5, 1), 1, 4, LR),
    ),
    # milestones count from begin: the change at begin + 1
    (
        "multistep-epochs-2-end",
        S.MultiStepLR(milestones=[1, 2], gamma=0.5, begin=2),
        5,
        windowed(multistep(LR, [1, 2], 0.5), 2, 5, LR),
    ),
    # iterations 2..4, then held at the value of step 3 (an exponential would go on decaying)
    (
        "exponential-iters-2-5",
        S.ExponentialLR(by_epoch=False, gamma=0.5, begin=2, end=5),
        2,
        windowed(exponential(LR, 0.5), 2, 5, LR),
    ),
    (
        "momentum-iters-3-7",
        S.LinearMomentum(by_epoch=False, start_factor=0.5, begin=3, end=7),
        3,
        windowed(linear(MOMENTUM, 0.5, 1.0, 4), 3, 7, MOMENTUM),
    ),
]


@pytest.mark.parametrize(("schedule", "epochs", "curve"), [pytest.param(*case[1:], id=case[0]) for case in WINDOWS])
def test_a_schedule_applies_in_its_window_and_holds_its_last_value(
    tmp_path: Path, schedule: Any, epochs: int, curve: Curve
) -> None:
    _, seen = _run(tmp_path, [schedule], epochs)
    iterations = epochs * ITERS
    values = seen.momentum if S.param_of(schedule) == "momentum" else seen.lr
    untouched = seen.lr if S.param_of(schedule) == "momentum" else seen.momentum
    assert values == approx(per_iteration(curve, schedule.by_epoch, iterations))
    assert untouched == approx([untouched[0]] * iterations)


@pytest.mark.parametrize(
    ("schedule", "epochs", "curve"),
    [
        # end = the run's end (4 epochs), T_max = end - begin = 3
        pytest.param(S.CosineAnnealingLR(begin=1), 4, windowed(cosine(LR, 3), 1, 4, LR), id="cosine-T_max"),
        # total_iters = end - begin = 3 epochs
        pytest.param(
            S.LinearLR(start_factor=0.4, begin=1), 4, windowed(linear(LR, 0.4, 1.0, 3), 1, 4, LR), id="linear"
        ),
        # by iteration: end = 12 iterations, total_iters = 12 - 2 = 10
        pytest.param(S.PolyLR(by_epoch=False, begin=2), 3, windowed(poly(LR, 1.0, 10), 2, 12, LR), id="poly-iter"),
    ],
)
def test_lengths_default_to_the_window_and_the_window_to_the_run(
    tmp_path: Path, schedule: Any, epochs: int, curve: Curve
) -> None:
    _, seen = _run(tmp_path, [schedule], epochs)
    assert seen.lr == approx(per_iteration(curve, schedule.by_epoch, epochs * ITERS))


# ----------------------------------------------------------------------------------------------
# Chained schedules: a warm-up by iteration, then a cosine by epoch converted to iterations
# ----------------------------------------------------------------------------------------------
def _warmup_then_cosine(warmup_end: int) -> list[Any]:
    return [
        S.LinearLR(by_epoch=False, start_factor=0.25, end=warmup_end),
        S.CosineAnnealingLR(begin=1, eta_min=0.01, convert_to_iter_based=True),
    ]


def _warmup_then_cosine_curve(warmup_end: int, iterations: int) -> list[float]:
    """Warm-up over iterations [0, warmup_end), its end value (the full lr) held until the cosine
    opens at epoch 1 (iteration 4), then a smooth cosine over the 8 remaining iterations."""
    warmup = linear(LR, 0.25, 1.0, warmup_end)
    cos = cosine(LR, (3 - 1) * ITERS, 0.01)
    return [cos(i - ITERS) if i >= ITERS else warmup(i) for i in range(iterations)]


@pytest.mark.parametrize("warmup_end", [3, 4])
def test_linear_warmup_by_iteration_then_cosine_by_epoch_converted_to_iterations(
    tmp_path: Path, warmup_end: int
) -> None:
    _, seen = _run(tmp_path, _warmup_then_cosine(warmup_end), 3)
    expected = _warmup_then_cosine_curve(warmup_end, 3 * ITERS)
    assert seen.lr == approx(expected)
    assert len(set(seen.lr[ITERS:])) == 2 * ITERS  # smooth: a new value every iteration, not every epoch


def test_convert_to_iter_based_scales_milestones_and_begin(tmp_path: Path) -> None:
    schedule = S.MultiStepLR(milestones=[1, 2], gamma=0.5, begin=1, convert_to_iter_based=True)
    _, seen = _run(tmp_path, [schedule], 4)
    # in iterations: begin 4, milestones 4 and 8 after it
    curve = windowed(multistep(LR, [4, 8], 0.5), ITERS, 4 * ITERS, LR)
    assert seen.lr == approx([curve(i) for i in range(4 * ITERS)])


# ----------------------------------------------------------------------------------------------
# Any other torch scheduler, by name
# ----------------------------------------------------------------------------------------------
def test_cyclic_lr_by_name_cycles_the_lr_and_the_momentum(tmp_path: Path) -> None:
    schedule = {"type": "CyclicLR", "base_lr": 0.01, "max_lr": 0.1, "step_size_up": 3, "by_epoch": False}
    _, seen = _run(tmp_path, [schedule], 3)
    assert seen.lr == approx([triangle(0.01, 0.1, 3)(i) for i in range(12)])
    # cycle_momentum (torch's default): momentum goes the other way, 0.9 (max) -> 0.8 (base) -> 0.9
    assert seen.momentum == approx([0.9 - (triangle(0.8, 0.9, 3)(i) - 0.8) for i in range(12)])


def test_cosine_warm_restarts_by_name_converted_to_iterations(tmp_path: Path) -> None:
    schedule = {
        "type": "CosineAnnealingWarmRestarts",
        "T_0": 1,
        "T_mult": 2,
        "eta_min": 0.01,
        "convert_to_iter_based": True,
    }
    _, seen = _run(tmp_path, [schedule], 3)
    # T_0 = 1 epoch = 4 iterations; the next period is 8
    assert seen.lr == approx([warm_restarts(LR, 4, 2, 0.01)(i) for i in range(12)])


def test_a_generic_schedule_in_a_window(tmp_path: Path) -> None:
    schedule = {"type": "CosineAnnealingWarmRestarts", "T_0": 3, "by_epoch": False, "begin": 2, "end": 9}
    _, seen = _run(tmp_path, [schedule], 3)
    curve = windowed(warm_restarts(LR, 3, 1, 0.0), 2, 9, LR)
    assert seen.lr == approx([curve(i) for i in range(12)])


def test_one_cycle_total_steps_default_to_its_window(tmp_path: Path) -> None:
    # end=6 of 8 iterations: the window's 6 steps walk the cycle's 7 states, iterations 0..6
    schedule = S.OneCycleLR(by_epoch=False, max_lr=0.4, end=6, cycle_momentum=False)
    _, seen = _run(tmp_path, [schedule], 2)
    assert seen.lr[:7] == approx([one_cycle(0.4, 7)(i) for i in range(7)])
    assert seen.lr[6] == approx(0.4 / 25 / 1e4)  # the cycle's end, at the window's end: initial lr / final_div_factor


def test_one_cycle_in_a_window_holds_its_final_lr_after_the_window(tmp_path: Path) -> None:
    schedule = S.OneCycleLR(by_epoch=False, max_lr=0.4, end=6, cycle_momentum=False)
    _, seen = _run(tmp_path, [schedule], 2)
    assert seen.lr[6:] == approx([0.4 / 25 / 1e4] * 2)


# ----------------------------------------------------------------------------------------------
# ReduceOnPlateauLR
# ----------------------------------------------------------------------------------------------
PLATEAU_SCRIPT = [50.0, 60.0, 60.3, 59.0, 58.0, 70.0, 65.0, 64.0, 63.0]
"""Validation accuracy after each epoch: 60.3 does not beat 60 by the relative threshold of 1%."""


def _plateau_schedule() -> S.ReduceOnPlateauLR:
    return S.ReduceOnPlateauLR(monitor="accuracy", rule="greater", factor=0.5, patience=1, threshold=0.01)


def test_reduce_on_plateau_follows_the_monitored_metric(tmp_path: Path) -> None:
    runner, seen = _run(
        tmp_path,
        [_plateau_schedule()],
        len(PLATEAU_SCRIPT),
        hooks=[EpochToMetric()],
        val_evaluator=Evaluator(metrics=[ScriptedMetric("accuracy", PLATEAU_SCRIPT)]),
    )
    assert [m["accuracy"] for m in runner.metric_history] == PLATEAU_SCRIPT
    per_epoch = plateau(PLATEAU_SCRIPT, factor=0.5, patience=1, threshold=0.01, greater=True)
    assert per_epoch == approx([LR] * 4 + [LR / 2] * 4 + [LR / 4])  # the script does reduce, twice
    assert seen.lr == approx(per_iteration(lambda e: per_epoch[e], True, runner.max_iters))


def test_reduce_on_plateau_with_rule_less_reads_a_falling_metric_as_improving(tmp_path: Path) -> None:
    script = [5.0, 4.0, 3.0, 2.0, 1.0]
    schedule = S.ReduceOnPlateauLR(monitor="accuracy", rule="less", factor=0.5, patience=0)
    _, seen = _run(
        tmp_path,
        [schedule],
        len(script),
        hooks=[EpochToMetric()],
        val_evaluator=Evaluator(metrics=[ScriptedMetric("accuracy", script)]),
    )
    assert seen.lr == approx([LR] * len(seen.lr))  # always improving: never reduced
    greater = plateau(script, factor=0.5, patience=0, threshold=1e-4, greater=True)
    assert greater[-1] < LR  # read the other way, it would have been


def _plateau_run(work_dir: Path, at: int | None, resume: bool, checkpoint: CheckpointHook) -> tuple[Runner, Seen]:
    seen = Seen()
    runner = Runner(
        toy_config(
            work_dir,
            max_epochs=len(PLATEAU_SCRIPT),
            optim_wrapper=OptimWrapper(optimizer=SGD(lr=LR, momentum=MOMENTUM)),
            param_scheduler=[_plateau_schedule()],
            val_evaluator=Evaluator(metrics=[ScriptedMetric("accuracy", PLATEAU_SCRIPT)]),
            default_hooks=DefaultHooks(checkpoint=checkpoint),
            custom_hooks=[seen, EpochToMetric(), Interrupt(iters=at)],
            resume=resume,
        )
    )
    try:
        runner.train()
    except Interrupted:
        assert at is not None
    return runner, seen


@pytest.mark.parametrize(
    ("checkpoint", "at", "saved"),
    [
        # iter_14.pth, in the middle of epoch 4, knows validations 1-3 (best 60, one bad: 60.3)
        pytest.param(CheckpointHook(by_epoch=False, interval=14), 15, 14, id="mid-epoch-checkpoint"),
        # epoch_4.pth is written before validation 4 (59: the second bad one, which reduces the lr)
        pytest.param(CheckpointHook(), 4 * ITERS + 2, 4 * ITERS, id="epoch-checkpoint"),
    ],
)
def test_reduce_on_plateau_resumed_follows_the_uninterrupted_curve(
    tmp_path: Path, checkpoint: CheckpointHook, at: int, saved: int
) -> None:
    _, whole = _plateau_run(tmp_path / "whole", None, False, checkpoint)
    _plateau_run(tmp_path / "split", at, False, checkpoint)
    _, resumed = _plateau_run(tmp_path / "split", None, True, checkpoint)
    assert resumed.lr == whole.lr[saved:]
    assert whole.lr[4 * ITERS] == approx(LR / 2)  # reduced after validation 4


# ----------------------------------------------------------------------------------------------
# Momentum schedules: SGD's momentum, Adam's beta1, and an optimizer without momentum
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("optimizer", [SGD(lr=LR, momentum=MOMENTUM), Adam(lr=LR, betas=(MOMENTUM, BETA2))])
@pytest.mark.parametrize(
    ("schedule", "curve"),
    [
        (S.ExponentialMomentum(gamma=0.8), exponential(MOMENTUM, 0.8)),
        (S.MultiStepMomentum(milestones=[1, 2], gamma=0.5), multistep(MOMENTUM, [1, 2], 0.5)),
        (S.MultiStepMomentum(by_epoch=False, milestones=[5], gamma=0.5), multistep(MOMENTUM, [5], 0.5)),
    ],
)
def test_momentum_schedule_drives_sgd_momentum_and_adam_beta1(
    tmp_path: Path, optimizer: Any, schedule: Any, curve: Curve
) -> None:
    runner, seen = _run(tmp_path, [schedule], 3, optimizer=optimizer)
    assert seen.momentum == approx(per_iteration(curve, schedule.by_epoch, 12))
    assert seen.lr == approx([LR] * 12)  # the lr is left alone
    if isinstance(optimizer, Adam):
        assert seen.beta2 == approx([BETA2] * 12)  # only beta1 is the momentum
    else:
        assert seen.beta2 == []
    # the real optimizer holds it (not only the shadow one): after the run, the value at the end
    group = _groups(runner)[0]
    final = float(group["betas"][0] if isinstance(optimizer, Adam) else group["momentum"])
    assert final == approx(curve(3 if schedule.by_epoch else 12))


def test_lr_and_momentum_schedules_together(tmp_path: Path) -> None:
    schedules = [S.CosineAnnealingLR(by_epoch=False), S.LinearMomentum(start_factor=0.5)]
    _, seen = _run(tmp_path, schedules, 3)
    assert seen.lr == approx([cosine(LR, 12)(i) for i in range(12)])
    assert seen.momentum == approx(per_iteration(linear(MOMENTUM, 0.5, 1.0, 3), True, 12))


def test_momentum_schedule_on_an_optimizer_without_momentum_is_a_clear_error(tmp_path: Path) -> None:
    cfg = toy_config(
        tmp_path / "run",
        optim_wrapper=OptimWrapper.model_validate({"optimizer": {"type": "Adagrad", "lr": LR}}),
        param_scheduler=[S.ExponentialMomentum(gamma=0.9)],
    )
    with pytest.raises((ValueError, ConfigError)) as info:
        Runner(cfg)
    assert "Adagrad has no momentum" in str(info.value)
    assert not (tmp_path / "run").exists()  # refused before anything is written
    Runner(cfg.model_copy(update={"param_scheduler": [S.ExponentialLR(gamma=0.9)]}))  # an lr schedule is fine


# ----------------------------------------------------------------------------------------------
# Cross-field checks
# ----------------------------------------------------------------------------------------------
def _paths(error: ConfigError) -> list[str]:
    return [p.path for p in error.problems if p.severity == "error"]


@pytest.mark.parametrize(
    ("schedule", "train_cfg", "message"),
    [
        (S.MultiStepLR(milestones=[1], begin=3), TrainLoop(max_epochs=3), "train_cfg.max_epochs=3"),
        (S.CosineAnnealingLR(begin=5, end=6), TrainLoop(max_epochs=3), "train_cfg.max_epochs=3"),
        (S.LinearLR(by_epoch=False, begin=8), TrainLoop(by_epoch=False, max_iters=8), "train_cfg.max_iters=8"),
        (S.CosineAnnealingLR(begin=3, convert_to_iter_based=True), TrainLoop(max_epochs=3), "max_epochs=3"),
        ({"type": "CyclicLR", "base_lr": 0.01, "max_lr": 0.1, "begin": 4}, TrainLoop(max_epochs=3), "max_epochs=3"),
    ],
)
def test_a_schedule_beginning_after_training_is_a_config_error(
    tmp_path: Path, schedule: Any, train_cfg: TrainLoop, message: str
) -> None:
    cfg = toy_config(
        tmp_path / "run",
        train_cfg=train_cfg,
        param_scheduler=[S.ConstantLR(by_epoch=bool(train_cfg.by_epoch)), schedule],  # a fine one first
        default_hooks=DefaultHooks(checkpoint=CheckpointHook(by_epoch=bool(train_cfg.by_epoch))),
    )
    with pytest.raises(ConfigError) as info:
        Runner(cfg)
    assert _paths(info.value) == ["param_scheduler[1].begin"]
    assert message in info.value.problems[0].message
    assert not (tmp_path / "run").exists()


def test_a_schedule_beginning_at_the_last_epoch_is_fine(tmp_path: Path) -> None:
    _, seen = _run(tmp_path, [S.LinearLR(start_factor=0.5, begin=2)], 3)
    assert seen.lr == approx([LR] * 8 + [LR / 2] * 4)


def test_an_iteration_schedule_beginning_after_an_epoch_run_is_reported(tmp_path: Path) -> None:
    runner = Runner(toy_config(tmp_path, max_epochs=2, param_scheduler=[S.LinearLR(by_epoch=False, begin=8)]))
    assert "param_scheduler[0].begin" in [p.path for p in runner.check() if p.severity == "error"]


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ({"type": "MultiStepLR", "milestones": [1], "begin": 2, "end": 2}, "end=2 must be after begin=2"),
        ({"type": "CosineAnnealingLR", "begin": 3, "end": 1}, "end=1 must be after begin=3"),
        (
            {"type": "CosineAnnealingLR", "by_epoch": False, "convert_to_iter_based": True},
            "convert_to_iter_based applies to a schedule given in epochs",
        ),
    ],
)
def test_an_empty_window_or_a_conversion_of_iterations_is_a_config_error(
    tmp_path: Path, schedule: dict[str, Any], message: str
) -> None:
    data = {"model": lazy(ToyModel, dim=4, hidden=8), "work_dir": str(tmp_path), "param_scheduler": [schedule]}
    with pytest.raises(ConfigError) as info:
        RunnerConfig.from_dict(data)
    assert _paths(info.value) == ["param_scheduler[0]"]  # once, at the schedule
    assert message in info.value.problems[0].message
    kind = getattr(S, schedule["type"])
    with pytest.raises(ValueError, match=message):  # the typed schedule itself refuses it
        kind.model_validate(schedule)


@pytest.mark.parametrize(
    "meta",
    [{"begin": 3, "end": 2}, {"by_epoch": False, "convert_to_iter_based": True}],
    ids=["end-before-begin", "convert-iterations"],
)
def test_a_generic_schedule_gets_the_same_window_checks(tmp_path: Path, meta: dict[str, Any]) -> None:
    schedule = {"type": "CyclicLR", "base_lr": 0.01, "max_lr": 0.1, **meta}
    data = {"model": lazy(ToyModel, dim=4, hidden=8), "work_dir": str(tmp_path), "param_scheduler": [schedule]}
    with pytest.raises(ConfigError) as info:
        RunnerConfig.from_dict(data)
    assert "param_scheduler[0]" in _paths(info.value)


def test_an_epoch_schedule_in_an_iteration_run_is_a_config_error(tmp_path: Path) -> None:
    cfg = toy_config(
        tmp_path / "run",
        train_cfg=TrainLoop(by_epoch=False, max_iters=8),
        default_hooks=DefaultHooks(checkpoint=CheckpointHook(by_epoch=False)),
        param_scheduler=[S.LinearLR(by_epoch=False), S.MultiStepLR(milestones=[2])],
    )
    with pytest.raises(ConfigError) as info:
        Runner(cfg)
    assert _paths(info.value) == ["param_scheduler[1].by_epoch"]
    assert "iteration-based" in info.value.problems[0].message
    assert not (tmp_path / "run").exists()


def test_plateau_monitor_must_be_a_metric_name(tmp_path: Path) -> None:
    cfg = toy_config(
        tmp_path / "run",
        param_scheduler=[S.ReduceOnPlateauLR(monitor="acuracy", rule="greater")],  # ToyMetric: 'accuracy'
    )
    runner = Runner(cfg)
    errors = [p for p in runner.check() if p.severity == "error"]
    assert [p.path for p in errors] == ["param_scheduler[0].monitor"]
    assert "did you mean accuracy?" in errors[0].message
    with pytest.raises(ContractError):
        runner.train()
    assert runner.iter == 0  # refused before the first step
    fixed = Runner(cfg.model_copy(update={"param_scheduler": [S.ReduceOnPlateauLR(monitor="accuracy")]}))
    assert [p for p in fixed.check() if p.severity == "error"] == []


# ----------------------------------------------------------------------------------------------
# Resume
# ----------------------------------------------------------------------------------------------
def _chained_run(work_dir: Path, at: int | None, resume: bool) -> tuple[Runner, Seen]:
    seen = Seen()
    runner = Runner(
        toy_config(
            work_dir,
            max_epochs=3,
            optim_wrapper=OptimWrapper(optimizer=SGD(lr=LR, momentum=MOMENTUM)),
            param_scheduler=[*_warmup_then_cosine(3), S.ExponentialMomentum(by_epoch=False, gamma=0.95)],
            default_hooks=DefaultHooks(checkpoint=CheckpointHook(by_epoch=False, interval=2)),
            custom_hooks=[seen, Interrupt(iters=at)],
            resume=resume,
        )
    )
    try:
        runner.train()
    except Interrupted:
        assert at is not None and runner.iter == at - 1  # the hook raised inside iteration `at`
    return runner, seen


@pytest.mark.parametrize(
    ("at", "saved"),
    [(3, 2), (7, 6)],
    ids=["in-the-warm-up-before-the-cosine-opens", "in-the-cosine"],
)
def test_resume_mid_run_follows_the_uninterrupted_curve(tmp_path: Path, at: int, saved: int) -> None:
    whole, uninterrupted = _chained_run(tmp_path / "whole", None, False)
    assert uninterrupted.lr == approx(_warmup_then_cosine_curve(3, 12))
    assert uninterrupted.momentum == approx([exponential(MOMENTUM, 0.95)(i) for i in range(12)])

    _, first = _chained_run(tmp_path / "split", at, False)
    assert first.lr == uninterrupted.lr[:at]
    assert (tmp_path / "split" / "last_checkpoint").read_text().endswith(f"iter_{saved}.pth")
    resumed_runner, resumed = _chained_run(tmp_path / "split", None, True)
    assert not [p for p in resumed_runner.findings if p.stage == "resume"]  # the same config: an exact resume
    assert resumed.lr == uninterrupted.lr[saved:]
    assert resumed.momentum == uninterrupted.momentum[saved:]
    final = _model_weights(resumed_runner)
    for key, value in _model_weights(whole).items():
        assert torch.equal(final[key], value), key
    # the resumed schedules are where the whole run's are: each slot's scheduler state is equal
    assert [s.state_dict() for s in resumed_runner.schedulers] == [s.state_dict() for s in whole.schedulers]
