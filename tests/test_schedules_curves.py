"""Every schedule's learning-rate (and momentum) curve, seen by a hook in a real run, against the
closed form written in ``tests.helpers`` from the schedule's definition (never by asking torch): by epoch
and by iteration, in windows, chained, defaulted to the run's length, and any other torch scheduler by
name.

Window semantics pinned here, MMEngine's (``tests/test_schedules_mmengine.py`` compares with MMEngine
itself): a schedule's step ``t`` applies at epoch (or iteration) ``begin + t``, for ``t`` up to
``end - begin - 1``; the value of that last step is then held to the end of the run. Lengths left unset
default as MMEngine's: ``T_max`` and ``total_steps`` to ``end - begin``, ``total_iters`` to
``end - begin - 1`` (so a warm-up reaches its ``end_factor``, a poly decay its ``eta_min`` and a
``ConstantLR`` is restored at the window's last step).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ITERS
from tests.schedule_support import (
    LR,
    MOMENTUM,
    Curve,
    approx,
    cosine,
    exponential,
    linear,
    multistep,
    per_iteration,
    run_schedules,
    warmup_then_cosine,
    warmup_then_cosine_curve,
)
from typedrunner.config import scheduler as S


def step(base: float, size: int, gamma: float) -> Curve:
    return lambda t: base * gamma ** (t // size)


def constant(base: float, factor: float, total: int) -> Curve:
    return lambda t: base * factor if t < total else base


def poly(base: float, power: float, total: int, eta_min: float = 0.0) -> Curve:
    return lambda t: eta_min + (base - eta_min) * (1 - min(t, total) / total) ** power


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
    """``curve`` in the window: unchanged before ``begin``, its value at ``end - 1`` held after it."""
    return lambda k: before if k < begin else curve(min(k, end - 1) - begin)


# ----------------------------------------------------------------------------------------------
# Each typed schedule, over the whole run
# ----------------------------------------------------------------------------------------------
# (id, schedule, epochs, lr curve, momentum curve): curves of the step, per epoch or per iteration
# as the schedule says; None for a value the schedule leaves alone.
WHOLE_RUN: list[tuple[str, Any, int, Curve | None, Curve | None]] = [
    # by epoch, over 4 epochs (T_max defaults to the 4 epochs, total_iters to the last step, 3)
    ("MultiStepLR", S.MultiStepLR(milestones=[1, 3], gamma=0.5), 4, multistep(LR, [1, 3], 0.5), None),
    ("StepLR", S.StepLR(step_size=2, gamma=0.3), 4, step(LR, 2, 0.3), None),
    ("ExponentialLR", S.ExponentialLR(gamma=0.8), 4, exponential(LR, 0.8), None),
    ("CosineAnnealingLR", S.CosineAnnealingLR(eta_min=0.01), 4, cosine(LR, 4, 0.01), None),
    ("LinearLR", S.LinearLR(start_factor=0.25), 4, linear(LR, 0.25, 1.0, 3), None),
    ("ConstantLR", S.ConstantLR(factor=0.5, total_iters=3), 4, constant(LR, 0.5, 3), None),
    ("PolyLR", S.PolyLR(power=2.0), 4, poly(LR, 2.0, 3), None),
    ("MultiStepMomentum", S.MultiStepMomentum(milestones=[2], gamma=0.5), 4, None, multistep(MOMENTUM, [2], 0.5)),
    ("StepMomentum", S.StepMomentum(step_size=3, gamma=0.5), 4, None, step(MOMENTUM, 3, 0.5)),
    ("ExponentialMomentum", S.ExponentialMomentum(gamma=0.9), 4, None, exponential(MOMENTUM, 0.9)),
    ("CosineAnnealingMomentum", S.CosineAnnealingMomentum(eta_min=0.5), 4, None, cosine(MOMENTUM, 4, 0.5)),
    ("LinearMomentum", S.LinearMomentum(start_factor=0.5), 4, None, linear(MOMENTUM, 0.5, 1.0, 3)),
    ("ConstantMomentum", S.ConstantMomentum(factor=0.5, total_iters=2), 4, None, constant(MOMENTUM, 0.5, 2)),
    ("PolyMomentum", S.PolyMomentum(power=0.5), 4, None, poly(MOMENTUM, 0.5, 3)),
    ("PolyLR-eta_min", S.PolyLR(power=2.0, eta_min=0.02), 4, poly(LR, 2.0, 3, 0.02), None),
    ("PolyMomentum-eta_min", S.PolyMomentum(eta_min=0.6), 4, None, poly(MOMENTUM, 1.0, 3, 0.6)),
    # by iteration, over 3 epochs of 4 iterations (T_max / total_steps default to 12, total_iters to 11)
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
    ("PolyLR-iter", S.PolyLR(by_epoch=False, power=1.5), 3, poly(LR, 1.5, 11), None),
    (
        "OneCycleLR-iter",  # total_steps defaults to the window's 12 steps: the cycle ends as the run does
        S.OneCycleLR(by_epoch=False, max_lr=0.5),
        3,
        one_cycle(0.5, 12),
        None,  # MMEngine's OneCycleLR leaves the momentum alone
    ),
    (
        "OneCycleLR-momentum-iter",  # torch's option: cycles SGD's momentum too, 0.95 -> 0.85 -> 0.95
        S.OneCycleLR(by_epoch=False, max_lr=0.5, cycle_momentum=True),
        3,
        one_cycle(0.5, 12),
        one_cycle(0.5, 12, momentum=(0.85, 0.95)),
    ),
    (
        "OneCycleLR-linear-iter",
        S.OneCycleLR(
            by_epoch=False, max_lr=0.3, pct_start=0.5, div_factor=10.0, anneal_strategy="linear", cycle_momentum=False
        ),
        2,
        one_cycle(0.3, 8, pct_start=0.5, div=10.0, strategy="linear"),
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
    _, seen = run_schedules(tmp_path, [schedule], epochs)
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
    # epochs 1..2 (steps 0 and 1 of T_max = 2), then the value of step 1 held
    ("cosine-epochs-1-3", S.CosineAnnealingLR(begin=1, end=3), 5, windowed(cosine(LR, 2), 1, 3, LR)),
    # the factor applies for total_iters (default end - begin - 1 = 1) epochs, then the lr is restored
    ("constant-epochs-1-3", S.ConstantLR(factor=0.5, begin=1, end=3), 5, windowed(constant(LR, 0.5, 1), 1, 3, LR)),
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
    # iterations 2..4, then held at the value of step 2 (an exponential would go on decaying)
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
        windowed(linear(MOMENTUM, 0.5, 1.0, 3), 3, 7, MOMENTUM),
    ),
]


@pytest.mark.parametrize(("schedule", "epochs", "curve"), [pytest.param(*case[1:], id=case[0]) for case in WINDOWS])
def test_a_schedule_applies_in_its_window_and_holds_its_last_value(
    tmp_path: Path, schedule: Any, epochs: int, curve: Curve
) -> None:
    _, seen = run_schedules(tmp_path, [schedule], epochs)
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
        # total_iters = end - begin - 1 = 2 epochs
        pytest.param(
            S.LinearLR(start_factor=0.4, begin=1), 4, windowed(linear(LR, 0.4, 1.0, 2), 1, 4, LR), id="linear"
        ),
        # by iteration: end = 12 iterations, total_iters = 12 - 2 - 1 = 9
        pytest.param(S.PolyLR(by_epoch=False, begin=2), 3, windowed(poly(LR, 1.0, 9), 2, 12, LR), id="poly-iter"),
    ],
)
def test_lengths_default_to_the_window_and_the_window_to_the_run(
    tmp_path: Path, schedule: Any, epochs: int, curve: Curve
) -> None:
    _, seen = run_schedules(tmp_path, [schedule], epochs)
    assert seen.lr == approx(per_iteration(curve, schedule.by_epoch, epochs * ITERS))


# ----------------------------------------------------------------------------------------------
# Chained schedules: a warm-up by iteration, then a cosine by epoch converted to iterations
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("warmup_end", [3, 4])
def test_linear_warmup_by_iteration_then_cosine_by_epoch_converted_to_iterations(
    tmp_path: Path, warmup_end: int
) -> None:
    _, seen = run_schedules(tmp_path, warmup_then_cosine(warmup_end), 3)
    expected = warmup_then_cosine_curve(warmup_end, 3 * ITERS)
    assert seen.lr == approx(expected)
    assert len(set(seen.lr[ITERS:])) == 2 * ITERS  # smooth: a new value every iteration, not every epoch


def test_convert_to_iter_based_scales_milestones_and_begin(tmp_path: Path) -> None:
    schedule = S.MultiStepLR(milestones=[1, 2], gamma=0.5, begin=1, convert_to_iter_based=True)
    _, seen = run_schedules(tmp_path, [schedule], 4)
    # in iterations: begin 4, milestones 4 and 8 after it
    curve = windowed(multistep(LR, [4, 8], 0.5), ITERS, 4 * ITERS, LR)
    assert seen.lr == approx([curve(i) for i in range(4 * ITERS)])


# ----------------------------------------------------------------------------------------------
# Any other torch scheduler, by name
# ----------------------------------------------------------------------------------------------
def test_cyclic_lr_by_name_cycles_the_lr_and_the_momentum(tmp_path: Path) -> None:
    schedule = {"type": "CyclicLR", "base_lr": 0.01, "max_lr": 0.1, "step_size_up": 3, "by_epoch": False}
    _, seen = run_schedules(tmp_path, [schedule], 3)
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
    _, seen = run_schedules(tmp_path, [schedule], 3)
    # T_0 = 1 epoch = 4 iterations; the next period is 8
    assert seen.lr == approx([warm_restarts(LR, 4, 2, 0.01)(i) for i in range(12)])


def test_a_generic_schedule_in_a_window(tmp_path: Path) -> None:
    schedule = {"type": "CosineAnnealingWarmRestarts", "T_0": 3, "by_epoch": False, "begin": 2, "end": 9}
    _, seen = run_schedules(tmp_path, [schedule], 3)
    curve = windowed(warm_restarts(LR, 3, 1, 0.0), 2, 9, LR)
    assert seen.lr == approx([curve(i) for i in range(12)])


def test_one_cycle_total_steps_default_to_its_window(tmp_path: Path) -> None:
    # end=6 of 8 iterations: the cycle's 6 steps, at iterations 0..5
    schedule = S.OneCycleLR(by_epoch=False, max_lr=0.4, end=6)
    _, seen = run_schedules(tmp_path, [schedule], 2)
    assert seen.lr[:6] == approx([one_cycle(0.4, 6)(i) for i in range(6)])
    assert seen.lr[5] == approx(
        0.4 / 25 / 1e4
    )  # the cycle's end, at the window's last step: initial lr / final_div_factor


def test_one_cycle_in_a_window_holds_its_final_lr_after_the_window(tmp_path: Path) -> None:
    schedule = S.OneCycleLR.model_validate({"by_epoch": False, "eta_max": 0.4, "end": 6})  # MMEngine's max_lr
    _, seen = run_schedules(tmp_path, [schedule], 2)
    assert seen.lr[5:] == approx([0.4 / 25 / 1e4] * 3)
