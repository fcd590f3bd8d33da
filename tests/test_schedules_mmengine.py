"""Every schedule MMEngine has, against MMEngine itself: the same ``param_scheduler`` entries given to
MMEngine's own ``Runner`` and to typedrunner's, over the same epochs and iterations, give the same lr
and momentum at every iteration. Windows, defaulted lengths, chains of several schedules and
``convert_to_iter_based`` included. ``ReduceOnPlateauLR`` and ``ReduceOnPlateauMomentum`` step on each
validation's metrics: both runners validate after every epoch, their metric giving the same scripted values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.mmengine_support import mmengine_plateau, mmengine_schedule
from tests.schedule_support import approx, run_schedules
from typedrunner.config import Evaluator
from typedrunner.testing import EpochToMetric, ScriptedMetric

EPOCHS = 5  # of 4 iterations: 20 iterations

SGD = {"type": "SGD", "lr": 0.1, "momentum": 0.9}
ADAM = {"type": "Adam", "lr": 0.01, "betas": (0.9, 0.999)}

# (id, param_scheduler, optimizer): the entries exactly as an MMEngine config writes them
CASES: list[tuple[str, list[dict[str, Any]], dict[str, Any]]] = [
    # by epoch
    ("multistep", [{"type": "MultiStepLR", "milestones": [1, 3], "gamma": 0.5}], SGD),
    ("step-window", [{"type": "StepLR", "step_size": 2, "gamma": 0.5, "begin": 1, "end": 4}], SGD),
    ("exponential-end", [{"type": "ExponentialLR", "gamma": 0.8, "end": 3}], SGD),
    ("cosine", [{"type": "CosineAnnealingLR", "eta_min": 0.01}], SGD),
    ("cosine-window", [{"type": "CosineAnnealingLR", "T_max": 2, "begin": 1, "end": 4}], SGD),
    ("linear", [{"type": "LinearLR", "start_factor": 0.25}], SGD),
    ("linear-window", [{"type": "LinearLR", "start_factor": 0.5, "begin": 1, "end": 4}], SGD),
    ("constant", [{"type": "ConstantLR", "factor": 0.5}], SGD),
    ("constant-window", [{"type": "ConstantLR", "factor": 0.5, "begin": 1, "end": 3}], SGD),
    ("poly-eta_min", [{"type": "PolyLR", "power": 2.0, "eta_min": 0.01}], SGD),
    ("poly-window", [{"type": "PolyLR", "begin": 1, "end": 4}], SGD),
    # by iteration
    ("multistep-iter", [{"type": "MultiStepLR", "by_epoch": False, "milestones": [3, 7], "end": 12}], SGD),
    ("step-iter", [{"type": "StepLR", "by_epoch": False, "step_size": 3, "begin": 2, "end": 15}], SGD),
    ("exponential-iter", [{"type": "ExponentialLR", "by_epoch": False, "gamma": 0.9, "begin": 5}], SGD),
    (
        "cosine-iter",
        [{"type": "CosineAnnealingLR", "by_epoch": False, "T_max": 8, "begin": 2, "end": 15, "eta_min": 0.02}],
        SGD,
    ),
    ("linear-iter", [{"type": "LinearLR", "by_epoch": False, "start_factor": 0.25, "end": 6}], SGD),
    ("constant-iter", [{"type": "ConstantLR", "by_epoch": False, "factor": 0.3, "begin": 2, "end": 9}], SGD),
    ("poly-iter", [{"type": "PolyLR", "by_epoch": False, "power": 1.5, "eta_min": 0.005}], SGD),
    ("onecycle-iter", [{"type": "OneCycleLR", "by_epoch": False, "eta_max": 0.5}], SGD),
    (
        "onecycle-three-phase",
        [
            {
                "type": "OneCycleLR",
                "by_epoch": False,
                "eta_max": 0.3,
                "total_steps": 20,
                "pct_start": 0.4,
                "anneal_strategy": "linear",
                "div_factor": 10.0,
                "three_phase": True,
            }
        ],
        SGD,
    ),
    ("onecycle-window", [{"type": "OneCycleLR", "by_epoch": False, "eta_max": 0.4, "end": 10}], SGD),
    ("cosine-eta_min_ratio", [{"type": "CosineAnnealingLR", "eta_min_ratio": 0.1, "begin": 1}], SGD),
    (
        "cosine-restart",
        [{"type": "CosineRestartLR", "periods": [2, 3], "restart_weights": [1.0, 0.5], "eta_min": 0.01}],
        SGD,
    ),
    (
        "cosine-restart-iter",
        [
            {
                "type": "CosineRestartLR",
                "by_epoch": False,
                "periods": [5, 7, 4],
                "restart_weights": [1.0, 0.6, 0.3],
                "eta_min_ratio": 0.05,
                "begin": 2,
            }
        ],
        SGD,
    ),
    # given in epochs, stepped every iteration
    (
        "cosine-restart-convert",
        [
            {
                "type": "CosineRestartLR",
                "periods": [2, 2],
                "restart_weights": [1, 0.5],
                "eta_min": 0.0,
                "convert_to_iter_based": True,
            }
        ],
        SGD,
    ),
    ("multistep-convert", [{"type": "MultiStepLR", "milestones": [1, 3], "convert_to_iter_based": True}], SGD),
    ("step-convert", [{"type": "StepLR", "step_size": 2, "gamma": 0.5, "convert_to_iter_based": True}], SGD),
    (
        "cosine-convert",
        [{"type": "CosineAnnealingLR", "begin": 1, "eta_min": 0.01, "convert_to_iter_based": True}],
        SGD,
    ),
    ("linear-convert", [{"type": "LinearLR", "start_factor": 0.2, "end": 2, "convert_to_iter_based": True}], SGD),
    ("poly-convert", [{"type": "PolyLR", "eta_min": 0.01, "convert_to_iter_based": True}], SGD),
    ("constant-convert", [{"type": "ConstantLR", "end": 2, "convert_to_iter_based": True}], SGD),
    # chains: one after the other, and overlapping (both act on the same steps)
    (
        "warmup-then-cosine",
        [
            {"type": "LinearLR", "start_factor": 0.25, "by_epoch": False, "end": 6},
            {"type": "CosineAnnealingLR", "begin": 1, "eta_min": 0.01, "convert_to_iter_based": True},
        ],
        SGD,
    ),
    (
        "warmup-and-multistep",
        [
            {"type": "LinearLR", "start_factor": 0.1, "by_epoch": False, "end": 5},
            {"type": "MultiStepLR", "milestones": [2, 4], "gamma": 0.5},
        ],
        SGD,
    ),
    (
        "linear-then-cosine-epochs",
        [
            {"type": "LinearLR", "start_factor": 0.5, "end": 2},
            {"type": "CosineAnnealingLR", "begin": 2, "eta_min": 0.001},
        ],
        SGD,
    ),
    (
        "exponential-iter-and-step-epoch",
        [
            {"type": "ExponentialLR", "by_epoch": False, "gamma": 0.95},
            {"type": "StepLR", "step_size": 2, "gamma": 0.5},
        ],
        SGD,
    ),
    # momentum
    ("multistep-momentum", [{"type": "MultiStepMomentum", "milestones": [2], "gamma": 0.5}], SGD),
    ("step-momentum", [{"type": "StepMomentum", "by_epoch": False, "step_size": 5, "gamma": 0.8}], SGD),
    ("exponential-momentum", [{"type": "ExponentialMomentum", "gamma": 0.9, "end": 3}], SGD),
    ("cosine-momentum", [{"type": "CosineAnnealingMomentum", "eta_min": 0.5}], SGD),
    ("linear-momentum", [{"type": "LinearMomentum", "start_factor": 0.5, "begin": 1, "end": 4}], SGD),
    ("constant-momentum", [{"type": "ConstantMomentum", "factor": 0.5, "by_epoch": False, "end": 7}], SGD),
    (
        "cosine-restart-momentum",
        [{"type": "CosineRestartMomentum", "periods": [3, 2], "restart_weights": [1, 0.9], "eta_min": 0.5}],
        SGD,
    ),
    ("cosine-momentum-ratio", [{"type": "CosineAnnealingMomentum", "eta_min_ratio": 0.5, "by_epoch": False}], SGD),
    ("poly-momentum", [{"type": "PolyMomentum", "eta_min": 0.6, "convert_to_iter_based": True}], SGD),
    ("cosine-momentum-adam", [{"type": "CosineAnnealingMomentum", "eta_min": 0.8, "by_epoch": False}], ADAM),
    ("linear-momentum-adam", [{"type": "LinearMomentum", "start_factor": 0.9}], ADAM),
    (
        "lr-and-momentum",
        [
            {"type": "CosineAnnealingLR", "by_epoch": False, "eta_min": 0.001},
            {"type": "LinearMomentum", "start_factor": 0.5, "end": 3},
        ],
        SGD,
    ),
]


@pytest.mark.parametrize(("schedules", "optimizer"), [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_schedule_equals_mmengine_step_for_step(
    tmp_path: Path, schedules: list[dict[str, Any]], optimizer: dict[str, Any]
) -> None:
    expected = mmengine_schedule(tmp_path / "mmengine", schedules, EPOCHS, optimizer)
    _, seen = run_schedules(tmp_path / "typedrunner", schedules, EPOCHS, optimizer=dict(optimizer))
    assert len(expected.lr) == EPOCHS * 4
    assert len(set(expected.lr)) > 1 or len(set(expected.momentum)) > 1  # the schedule does something
    assert seen.lr == approx(expected.lr)
    assert seen.momentum == approx(expected.momentum)


# ----------------------------------------------------------------------------------------------
# ReduceOnPlateauLR: stepped by each validation's metrics (MMEngine's ParamSchedulerHook.after_val_epoch)
# ----------------------------------------------------------------------------------------------
RISING = [50.0, 60.0, 60.3, 59.0, 58.0, 70.0, 65.0, 64.0, 63.0, 62.0]
"""An accuracy after each epoch: 60.3 beats 60 by 0.5%, not by 1%."""
FALLING = [1.0, 0.8, 0.79, 0.85, 0.6, 0.6, 0.599, 0.7, 0.5, 0.55]
"""A loss after each epoch: 0.79 beats 0.8 by 1.25% (0.01 absolute), 0.599 beats 0.6 by 0.17%."""


def _plateau(**arguments: Any) -> dict[str, Any]:
    return {"type": "ReduceOnPlateauLR", "monitor": "accuracy", **arguments}


def _momentum(**arguments: Any) -> dict[str, Any]:
    return {"type": "ReduceOnPlateauMomentum", "monitor": "accuracy", **arguments}


# (id, param_scheduler, the monitored metric's value at each validation, optimizer)
PLATEAU_CASES: list[tuple[str, list[dict[str, Any]], list[float], dict[str, Any]]] = [
    ("greater-rel", [_plateau(rule="greater", factor=0.5, patience=1, threshold=0.01)], RISING, SGD),
    (
        "greater-abs",
        [_plateau(rule="greater", factor=0.5, patience=1, threshold=0.5, threshold_rule="abs")],
        RISING,
        SGD,
    ),
    ("less-rel", [_plateau(factor=0.5, patience=0, threshold=0.01)], FALLING, SGD),
    ("less-abs", [_plateau(rule="less", factor=0.5, patience=0, threshold=0.02, threshold_rule="abs")], FALLING, SGD),
    ("defaults-less", [_plateau(patience=0)], FALLING, SGD),
    ("cooldown", [_plateau(rule="greater", factor=0.5, patience=0, cooldown=2)], RISING, SGD),
    ("min_value", [_plateau(rule="greater", factor=0.1, patience=0, min_value=0.005)], RISING, SGD),
    ("eps", [_plateau(rule="greater", factor=0.6, patience=0, eps=0.03)], RISING, SGD),  # 0.06 -> 0.036 is skipped
    ("window", [_plateau(rule="greater", factor=0.5, patience=0, begin=2, end=5)], RISING, SGD),
    (
        "with-multistep",
        [
            {"type": "MultiStepLR", "milestones": [3], "gamma": 0.2},
            _plateau(rule="greater", factor=0.5, patience=1),
        ],
        RISING,
        SGD,
    ),
    (
        "after-warmup",
        [
            {"type": "LinearLR", "start_factor": 0.25, "by_epoch": False, "end": 10},
            _plateau(factor=0.5, patience=0),
        ],
        FALLING,
        SGD,
    ),
    # the momentum (SGD's momentum, Adam's beta1)
    ("momentum-greater", [_momentum(rule="greater", factor=0.5, patience=1, threshold=0.01)], RISING, SGD),
    (
        "momentum-abs-cooldown",
        [_momentum(factor=0.8, patience=0, threshold=0.05, threshold_rule="abs", cooldown=1)],
        FALLING,
        SGD,
    ),
    ("momentum-min_value", [_momentum(rule="greater", factor=0.5, patience=0, min_value=0.3)], RISING, SGD),
    ("momentum-adam", [_momentum(rule="greater", factor=0.9, patience=0, begin=1)], RISING, ADAM),
    (
        "lr-and-momentum",
        [_plateau(rule="greater", factor=0.5, patience=1), _momentum(rule="greater", factor=0.9, patience=0)],
        RISING,
        SGD,
    ),
]


@pytest.mark.parametrize(("schedules", "script", "optimizer"), [pytest.param(*c[1:], id=c[0]) for c in PLATEAU_CASES])
def test_reduce_on_plateau_equals_mmengine_validation_for_validation(
    tmp_path: Path, schedules: list[dict[str, Any]], script: list[float], optimizer: dict[str, Any]
) -> None:
    expected = mmengine_plateau(tmp_path / "mmengine", schedules, script, optimizer)
    runner, seen = run_schedules(
        tmp_path / "typedrunner",
        schedules,
        len(script),
        optimizer=dict(optimizer),
        hooks=[EpochToMetric()],
        val_evaluator=Evaluator(metrics=[ScriptedMetric("accuracy", script)]),
    )
    assert [m["accuracy"] for m in runner.metric_history] == script  # validated after every epoch
    assert len(expected.lr) == len(script) * 4
    assert len(set(expected.lr)) > 1 or len(set(expected.momentum)) > 1  # the script does reduce
    assert seen.lr == pytest.approx(expected.lr, rel=1e-12, abs=0)
    assert seen.momentum == pytest.approx(expected.momentum, rel=1e-12, abs=0)
