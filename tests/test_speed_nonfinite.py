"""Speed: the non-finite guard keeps each iteration's loss and checks them together at the log points
and before every save (issue 14): no device work per iteration, and still no NaN or inf missed.

The runs' guarantees (the run stops naming the iterations, no checkpoint holds NaN weights) are
tested in ``test_reliability_nan_loss.py``; these cover what the lean guard adds: a check with no
checkpoint in between, losses folded on a long interval, losses of several shapes, and inf.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.test_reliability_nan_loss import NAN_ITER, _nan_config
from typedrunner.config import DefaultHooks
from typedrunner.engine.guards import NonFiniteGuard
from typedrunner.engine.state import RunState
from typedrunner.errors import NonFiniteLossError
from typedrunner.runner import Runner


def test_a_nan_between_log_points_stops_the_run_at_the_next_one(tmp_path: Path) -> None:
    """No checkpoint in between: the NaN at iteration 13 is found at the log point of iteration 20."""
    runner = Runner(_nan_config(tmp_path, default_hooks=DefaultHooks(checkpoint=None)))
    with pytest.raises(NonFiniteLossError, match="NaN or infinite between iterations 11 and 20"):
        runner.train()
    assert runner.iter == 19 and NAN_ITER == 13  # stopped in iteration 20, before counting it


def _feed(guard: NonFiniteGuard, losses: list[torch.Tensor]) -> RunState:
    state = RunState()
    for i, loss in enumerate(losses):
        state.iter = i
        guard.update(state, {"loss": loss})
    return state


def test_a_long_interval_folds_the_losses_and_still_finds_an_inf() -> None:
    """With a log interval longer than FOLD iterations the guard keeps at most FOLD losses; an inf
    folded away long before the check still fails it."""
    guard = NonFiniteGuard(interval=10**6)
    losses = [torch.tensor(float("inf") if i == 100 else 1.0) for i in range(3 * guard.FOLD + 5)]
    state = _feed(guard, losses)
    assert len(guard._losses) == 5  # folded every FOLD iterations
    with pytest.raises(NonFiniteLossError, match=f"between iterations 1 and {len(losses)}"):
        guard.check(state)


def test_a_long_interval_of_finite_losses_passes() -> None:
    guard = NonFiniteGuard(interval=10**6)
    state = _feed(guard, [torch.tensor(1e30) for _ in range(guard.FOLD + 1)])
    guard.check(state)  # finite: no error
    guard.check(state)  # and nothing left to check


def test_losses_of_several_shapes_and_with_a_graph() -> None:
    """A model's own train_step may return a loss of any shape, still attached to its graph: the guard
    checks every element, and keeps no graph alive."""
    weight = torch.ones(3, requires_grad=True)
    losses = [(weight * 2).sum(), weight * 3, (weight * torch.tensor([1.0, float("nan"), 1.0]))]
    guard = NonFiniteGuard(interval=10**6)
    state = _feed(guard, losses)
    assert all(not loss.requires_grad for loss in guard._losses)
    with pytest.raises(NonFiniteLossError, match="between iterations 1 and 3"):
        guard.check(state)
