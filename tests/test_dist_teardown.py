"""A Python-API script under torchrun ends through the interpreter's teardown, and every rank exits 0.

A gloo worker thread lets go of a finished collective (and of the tensors Python passed it) after the
call that waited for it returned, and that release takes the GIL. A rank whose interpreter was already
finalising then aborted ("terminate called without an active exception", exit -6), and torchrun
reported the finished run as failed. ``shutdown()``, registered with ``atexit`` when the Runner joins
the process group, leaves the group and lets the workers settle first. The script below is what a
user writes: ``Runner(...).val()``, a few collectives of its own (waited for), then the end of the
file; without the fix 3 of 20 runs lost a rank on this 2-core machine.

``python -m tests.test_dist_teardown OUT`` is that script (one rank of it).
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.helpers import cli_env, explain
from tests.test_distributed import torchrun

RUNS = 5
"""Runs per test (about 7 s each here); without the fix about one run in six or seven aborted."""
OWN_REDUCTIONS = 200


def test_python_api_runs_under_torchrun_end_with_every_rank_exiting_0(tmp_path: Path) -> None:
    env = cli_env()
    failures = []
    for n in range(RUNS):
        out = tmp_path / str(n)
        result = torchrun([str(out)], env, module="tests.test_dist_teardown")
        done = sorted(line for line in result.stdout.splitlines() if line.startswith("teardown-script rank"))
        complete = done == [f"teardown-script rank {r} done: 64 samples, {OWN_REDUCTIONS} sums of 2" for r in (0, 1)]
        if result.returncode != 0 or not complete or "terminate called" in result.stderr:
            failures.append(f"run {n}: {explain(result)}")
    assert not failures, f"{len(failures)} of {RUNS} runs failed:\n" + "\n".join(failures)


def _script(out: str) -> None:
    """One rank: validate the seed's MLP on 64 points through the Python API, then reduce numbers of
    its own over the ranks (``async_op`` collectives, each waited for), print, and end."""
    import os

    import torch
    import torch.distributed as dist

    from typedrunner.runner import Runner

    runner = Runner(
        model={"type": "examples.seed_mlp.MyAwesomeModel", "layers": 2},
        work_dir=str(Path(out) / "work"),
        val_dataloader={
            "dataset": {"type": "examples.seed_mlp.MyDataset", "is_train": False, "size": 64},
            "batch_size": 8,
            "sampler": {"type": "DefaultSampler", "shuffle": False},
        },
        val_cfg={},
        val_evaluator=[{"type": "tests.dist_support.PerSample"}],
        launcher="pytorch",
        randomness={"seed": 0},
    )
    metrics = runner.val()
    works = [dist.all_reduce(torch.ones(4), async_op=True) for _ in range(OWN_REDUCTIONS)]
    for work in works:
        work.wait()
    sums = sum(int(t[0].item() == 2) for t in (w.result()[0] for w in works))
    del works
    line = f"teardown-script rank {os.environ['RANK']} done: {metrics['samples']:.0f} samples, {sums} sums of 2\n"
    sys.stdout.write(line)  # one write: the two ranks share torchrun's stdout
    sys.stdout.flush()


if __name__ == "__main__":
    _script(sys.argv[1])
