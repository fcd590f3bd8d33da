"""``ReduceOnPlateauLR``: the learning rate follows the monitored validation metric (rule ``greater`` or
``less``), against the closed form, and a resumed run follows the uninterrupted curve.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.helpers import ITERS
from tests.schedule_support import LR, MOMENTUM, Seen, approx, per_iteration, run_schedules
from typedrunner.config import (
    SGD,
    CheckpointHook,
    DefaultHooks,
    Evaluator,
    OptimWrapper,
)
from typedrunner.config import scheduler as S
from typedrunner.runner import Runner
from typedrunner.testing import EpochToMetric, Interrupt, Interrupted, ScriptedMetric, toy_config


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
# ReduceOnPlateauLR
# ----------------------------------------------------------------------------------------------
PLATEAU_SCRIPT = [50.0, 60.0, 60.3, 59.0, 58.0, 70.0, 65.0, 64.0, 63.0]
"""Validation accuracy after each epoch: 60.3 does not beat 60 by the relative threshold of 1%."""


def _plateau_schedule() -> S.ReduceOnPlateauLR:
    return S.ReduceOnPlateauLR(monitor="accuracy", rule="greater", factor=0.5, patience=1, threshold=0.01)


def test_reduce_on_plateau_follows_the_monitored_metric(tmp_path: Path) -> None:
    runner, seen = run_schedules(
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
    _, seen = run_schedules(
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
