"""A run with chained schedules, interrupted and resumed, follows the uninterrupted curve (lr and momentum)
and ends with the same weights.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor

from tests.schedule_support import LR, MOMENTUM, Seen, approx, exponential, warmup_then_cosine, warmup_then_cosine_curve
from typedrunner.config import (
    SGD,
    CheckpointHook,
    DefaultHooks,
    OptimWrapper,
)
from typedrunner.config import scheduler as S
from typedrunner.runner import Runner
from typedrunner.testing import Interrupt, Interrupted, toy_config


def _model_weights(runner: Runner) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in runner.model.state_dict().items()}


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
            param_scheduler=[*warmup_then_cosine(3), S.ExponentialMomentum(by_epoch=False, gamma=0.95)],
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
    assert uninterrupted.lr == approx(warmup_then_cosine_curve(3, 12))
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
