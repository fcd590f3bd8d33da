"""Reliability: checkpoints are atomic under SIGKILL.

Real processes and real signals: training children (forks of this process) are SIGKILLed at
pseudo-random moments, some of them while a checkpoint is being written, and resumed until the run is
done; no kill ever loses the last complete checkpoint, and the resumed run ends where an uninterrupted
one would.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Literal

import pytest

from tests.helpers import (
    checkpoint_weights,
    read_checkpoint,
    resolved_pointer,
    same_weights,
)
from typedrunner import lazy
from typedrunner.config import (
    SGD,
    CheckpointHook,
    DataLoader,
    DefaultHooks,
    DefaultSampler,
    LoggerHook,
    OptimWrapper,
    RunnerConfig,
)
from typedrunner.runner import Runner
from typedrunner.testing import ToyDataset, ToyModel, toy_config

FORK = multiprocessing.get_context("fork")
"""Training children are forks of this (already warm) process: a real process, started in ms."""


# ----------------------------------------------------------------------------------------------
# Atomic checkpoints under SIGKILL
# ----------------------------------------------------------------------------------------------
KILLS = 30
"""SIGKILLs across one run."""
KILL_ITERS_PER_EPOCH = 250  # 4000 samples, batch 16
KILL_EPOCHS = 4
KILL_SAVE_EVERY = 4


def _kill_config(work_dir: Path, resume: bool | Literal["auto"] = False) -> RunnerConfig:
    """A seed-like run of 1000 iterations (a few seconds), an iteration checkpoint every 4."""
    return toy_config(
        work_dir,
        max_epochs=KILL_EPOCHS,
        seed=7,
        model=lazy(ToyModel, dim=4, hidden=32),
        train_dataloader=DataLoader(
            dataset=lazy(ToyDataset, size=16 * KILL_ITERS_PER_EPOCH, seed=0),
            sampler=DefaultSampler(shuffle=True),
            batch_size=16,
        ),
        optim_wrapper=OptimWrapper(optimizer=SGD(lr=0.05, momentum=0.9)),
        default_hooks=DefaultHooks(
            checkpoint=CheckpointHook(by_epoch=False, interval=KILL_SAVE_EVERY), logger=LoggerHook(interval=25)
        ),
        log_level="WARNING",
        resume=resume,
    )


def _train_until_killed(work_dir: Path, ready: Connection) -> None:
    """In the child: resume whatever is there, say where from, train."""
    runner = Runner(_kill_config(work_dir, resume="auto"))
    ready.send((runner.epoch, runner.iter, runner.inner_iter))
    ready.close()
    runner.train()


def _save_temporaries(work_dir: Path) -> set[str]:
    """Temporary files of checkpoint and ``last_checkpoint`` writes (``.<name>.<random>.tmp``)."""
    return {
        name
        for name in os.listdir(work_dir)
        if name.endswith(".tmp") and (name.startswith(".iter_") or name.startswith(".last_checkpoint."))
    }


Verified = dict[tuple[str, int, int, int], tuple[int, int, int]]
"""Files already loaded, by (name, inode, mtime in ns, size): their (epoch, iter, inner_iter)."""


def _complete_checkpoints(work_dir: Path, verified: Verified) -> dict[int, tuple[int, int, int]]:
    """Every ``*.pth`` loads safely and is what its name says; iteration -> (epoch, iter, inner_iter).
    A file is loaded again only if it changed since it was last verified."""
    positions = {}
    for path in work_dir.glob("*.pth"):
        stat = path.stat()
        key = (path.name, stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if key not in verified:
            state = read_checkpoint(path)
            meta = state["meta"]
            assert meta["iter"] == int(path.stem.removeprefix("iter_")), path
            assert {"state_dict", "optimizer", "rng"} <= state.keys(), path
            verified[key] = (int(meta["epoch"]), int(meta["iter"]), int(meta["inner_iter"]))
        positions[verified[key][1]] = verified[key]
    return positions


def _expected_resume(work_dir: Path, complete: dict[int, tuple[int, int, int]]) -> tuple[int, int, int]:
    """Where a resumed run must start: the checkpoint ``last_checkpoint`` names, which is the newest
    complete one or, when a kill fell between writing a checkpoint and moving the pointer, the one
    before it; without a pointer, the newest complete checkpoint; without any, the beginning."""
    if not (work_dir / "last_checkpoint").is_file():
        return complete[max(complete)] if complete else (0, 0, 0)
    target = resolved_pointer(work_dir)
    assert target.parent == work_dir and target.suffix == ".pth", target
    iteration = int(target.stem.removeprefix("iter_"))
    assert iteration in complete, f"last_checkpoint names {target.name}, which is not a complete checkpoint"
    assert iteration in sorted(complete)[-2:], f"last_checkpoint names {target.name}; complete: {sorted(complete)}"
    return complete[iteration]


def _start_child(work_dir: Path) -> tuple[BaseProcess, tuple[int, int, int]]:
    reader, writer = FORK.Pipe(duplex=False)
    child = FORK.Process(target=_train_until_killed, args=(work_dir, writer), daemon=True)
    child.start()
    writer.close()
    if not reader.poll(60):
        child.kill()
        child.join()
        pytest.fail(f"the training child did not start (exit code {child.exitcode})")
    position: tuple[int, int, int] = reader.recv()
    reader.close()
    return child, position


def test_sigkill_at_random_moments_never_loses_a_checkpoint(tmp_path: Path) -> None:
    # An uninterrupted run first: the reference, and the imports the forked children reuse.
    reference = Runner(_kill_config(tmp_path / "straight"))
    started = time.perf_counter()
    reference.train()
    seconds_per_iter = (time.perf_counter() - started) / (KILL_EPOCHS * KILL_ITERS_PER_EPOCH)
    total = KILL_EPOCHS * KILL_ITERS_PER_EPOCH
    assert reference.iter == total

    work_dir = tmp_path / "killed"
    work_dir.mkdir()
    rng = random.Random(20261127)
    kills = during_save = 0
    verified: Verified = {}
    resumed_from: list[int] = []
    finished = False
    while kills < KILLS and not finished:
        complete = _complete_checkpoints(work_dir, verified)
        expected = _expected_resume(work_dir, complete)
        leftovers = _save_temporaries(work_dir)
        child, position = _start_child(work_dir)
        assert position == expected, f"resumed at {position}, the latest complete checkpoint is at {expected}"
        resumed_from.append(position[1])
        pid = child.pid
        assert pid is not None
        if rng.random() < 0.5:
            # Kill right after the n-th checkpoint or pointer write of this child has begun.
            writes, seen = rng.randint(1, 8), set(leftovers)
            deadline = time.monotonic() + 120
            while child.is_alive() and writes > 0:
                new = _save_temporaries(work_dir) - seen
                seen |= new
                writes -= len(new)
                if time.monotonic() > deadline:
                    child.kill()
                    pytest.fail("the training child wrote no checkpoint for 120 s")
        else:
            # Kill after a pseudo-random stretch of training: on average 1/KILLS of the run (in this
            # machine's time per iteration), so that the kills spread across it.
            time.sleep(rng.uniform(0.0, 2.0 * total / KILLS) * seconds_per_iter)
        os.kill(pid, signal.SIGKILL)
        child.join()
        if child.exitcode == 0:
            finished = True  # it was done before the kill
            break
        assert child.exitcode == -signal.SIGKILL, f"the child failed by itself (exit code {child.exitcode})"
        kills += 1
        if _save_temporaries(work_dir) - leftovers:
            during_save += 1  # its partial file is still there: the kill landed inside a write

    # Whatever is left over from the kills is never taken for a checkpoint; now finish the run.
    complete = _complete_checkpoints(work_dir, verified)
    expected = _expected_resume(work_dir, complete)
    if not finished:
        child, position = _start_child(work_dir)
        assert position == expected
        child.join(timeout=300)
        assert child.exitcode == 0, f"the last child failed (exit code {child.exitcode})"

    print(
        f"\n{kills} SIGKILLs, {during_save} inside a checkpoint or pointer write; resumed at iterations "
        f"{resumed_from}; {len(_save_temporaries(work_dir))} partial temporary files left behind"
    )
    assert kills == KILLS, f"the run finished after {kills} kills: it is too short for this machine"
    assert during_save >= 3, f"only {during_save} of {kills} kills landed inside a write"
    assert len(set(resumed_from)) > KILLS // 2, f"the run did not advance between kills: {resumed_from}"

    complete = _complete_checkpoints(work_dir, verified)
    assert max(complete) == total
    assert resolved_pointer(work_dir) == work_dir / f"iter_{total}.pth"
    assert same_weights(checkpoint_weights(work_dir / f"iter_{total}.pth"), reference.model.state_dict())
    # every checkpoint, whichever child wrote it, equals the uninterrupted run's at that iteration
    for iteration in sorted(complete):
        name = f"iter_{iteration}.pth"
        assert same_weights(checkpoint_weights(work_dir / name), checkpoint_weights(tmp_path / "straight" / name))
