"""Speed: the runner's Python calls per training iteration, against a hand-written loop doing the
same work (issue 14; ``benchmarks/call_budget.py``). Deterministic, so it holds on a loaded machine.

Before the lean loop the runner made 91.5 calls per iteration more than the hand-written loop; now
54. The bound leaves room for a few calls, not for a layer per iteration.
"""

from __future__ import annotations

import pytest

from benchmarks.call_budget import LOG_INTERVAL, Budget, measure

BUDGET = 60
"""At most this many Python calls per iteration more than the hand-written loop (53.85 measured)."""


@pytest.fixture(scope="module")
def budget() -> Budget:
    return measure()


def test_the_runner_adds_few_python_calls_per_iteration(budget: Budget) -> None:
    assert budget.hand_calls > 100  # the hand-written loop's window really profiled its iterations
    largest = sorted(budget.by_function.items(), key=lambda kv: -abs(kv[1]))[:15]
    assert budget.extra <= BUDGET, f"{budget.extra:.1f} calls per iteration more than by hand: {largest}"


def test_no_per_iteration_dispatch_data_generator_vote_or_device_check(budget: Budget) -> None:
    """The hook list's per-event methods, the data guard, the stop vote (one process) and the
    non-finite guard's device work happen less than once per iteration: only the guard's ``update``
    (a list append) runs every iteration."""
    every_iteration = [name for name, calls in budget.by_function.items() if calls >= 1]
    for place in ("parts/hooks/base.py", "engine/guards.py:", "parts/distributed.py", "torch/distributed"):
        called = [name for name in every_iteration if place in name and not name.endswith("(update)")]
        assert not called, f"called every iteration: {called}"
    # isfinite runs at the log points only (once every LOG_INTERVAL iterations)
    assert 0 < budget.by_function.get("~:0(<built-in method torch.isfinite>)", 0) <= 1 / LOG_INTERVAL
