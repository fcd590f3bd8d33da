"""Reliability and security: nothing is lost under kills, signals, bad files and bad input.

Real processes and real signals throughout: training children are SIGKILLed at pseudo-random
moments (some of them while a checkpoint is being written) and resumed until the run is done; the
command line is stopped with SIGTERM / SIGINT and resumed; a NaN loss, a corrupt sample, a dead
dataloader worker and a checkpoint write cut short by ``RLIMIT_FSIZE`` each stop the run with a
clear message and leave the last checkpoint intact; a checkpoint whose pickle would run code, and a
config naming a function or a foreign class as a ``type``, are refused and nothing they name runs.
"""

from __future__ import annotations

import builtins
import gc
import io
import json
import multiprocessing
import os
import pickle
import random
import resource
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import IO, Any, Literal

import pytest
import torch
from torch import Tensor
from torch.utils.data import get_worker_info

from tests.helpers import explain, run_cli
from tests.test_cli import FAST
from typedrunner import ConfigError, ContractError, lazy
from typedrunner.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
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
from typedrunner.hooks import Hook
from typedrunner.optim import OptimWrapper as BuiltOptimWrapper
from typedrunner.runner import Runner
from typedrunner.safety import NonFiniteLossError, TrainingStopped
from typedrunner.testing import ToyDataset, ToyModel, toy_config

REPO = Path(__file__).resolve().parents[1]
FORK = multiprocessing.get_context("fork")
"""Training children are forks of this (already warm) process: a real process, started in ms."""

PLUGINS = "reliability_plugins"
"""A module written to ``tmp_path`` and put on the children's PYTHONPATH (the CLI imports it)."""
PLUGINS_SOURCE = '''
"""Test plugins for the command line: a slow dataset, a NaN dataset, a hook that caps file sizes."""
from __future__ import annotations

import resource
import signal
import time
from typing import Any

from examples.seed_mlp import MyDataset
from typedrunner.hooks import Hook
from typedrunner.runner import Runner


class Slow(MyDataset):
    """The seed's rings; each sample takes ``delay`` seconds to load."""

    def __init__(self, is_train: bool, size: int, delay: float = 0.0005) -> None:
        super().__init__(is_train, size)
        self.delay = delay

    def __getitem__(self, index: int) -> Any:
        time.sleep(self.delay)
        return super().__getitem__(index)


class NanRings(MyDataset):
    """The seed's rings with one NaN coordinate at ``nan_index``."""

    def __init__(self, is_train: bool, size: int, nan_index: int = 0) -> None:
        super().__init__(is_train, size)
        self.data[nan_index, 0] = float("nan")


class FileSizeLimit(Hook):
    """Once epoch ``after_epochs`` is saved: no file may grow past ``fraction`` of that checkpoint
    (RLIMIT_FSIZE, SIGXFSZ ignored so that the write fails with EFBIG instead of killing us)."""

    def __init__(self, after_epochs: int = 1, fraction: float = 0.5) -> None:
        self.after_epochs = after_epochs
        self.fraction = fraction

    def after_train_epoch(self, runner: Runner) -> None:
        if runner.epoch + 1 == self.after_epochs:
            size = (runner.work_dir / f"epoch_{self.after_epochs}.pth").stat().st_size
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (int(size * self.fraction), resource.RLIM_INFINITY))
'''


# ----------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------
def _load(path: Path) -> dict[str, Any]:
    state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    return state


def _weights(path: Path) -> dict[str, Tensor]:
    """The model weights in a checkpoint file."""
    weights: dict[str, Tensor] = _load(path)["state_dict"]
    return weights


def _same_weights(a: Mapping[str, Tensor], b: Mapping[str, Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _finite(weights: Mapping[str, Tensor]) -> bool:
    return all(bool(torch.isfinite(v).all()) for v in weights.values())


def _pointer(work_dir: Path) -> Path:
    """The file ``last_checkpoint`` names, as a path in work_dir."""
    target = Path((work_dir / "last_checkpoint").read_text(encoding="utf-8").strip())
    return target if target.is_absolute() else work_dir / target


def _write_plugins(tmp_path: Path) -> Path:
    directory = tmp_path / "plugins"
    directory.mkdir(exist_ok=True)
    (directory / f"{PLUGINS}.py").write_text(PLUGINS_SOURCE, encoding="utf-8")
    return directory


def _cli_env(plugins: Path) -> dict[str, str]:
    """As conftest's ``subprocess_env`` (one thread, the repo importable), plus the plugins."""
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), str(plugins), env.get("PYTHONPATH", "")) if p)
    env.pop("HYDRA_FULL_ERROR", None)
    return env


def _mlp_args(run_dir: Path, *extra: str, dataset: str = f"{PLUGINS}.Slow") -> list[str]:
    """The seed for 2 epochs of 1280 points (20 iterations each), a plugin dataset, seeded, no schedule."""
    return [
        "+experiment=mlp",
        *FAST,
        f"custom_imports=[examples.seed_mlp,{PLUGINS}]",
        f"train_dataloader.dataset.type={dataset}",
        "train_dataloader.dataset.size=1280",
        "train_cfg.max_epochs=2",
        "+randomness.seed=0",
        f"hydra.run.dir={run_dir}",
        *extra,
    ]


class Cli:
    """``python -m typedrunner`` running in the background, its output going to files."""

    def __init__(self, args: list[str], env: dict[str, str], logs: Path) -> None:
        logs.mkdir(parents=True, exist_ok=True)
        self.stdout_path, self.stderr_path = logs / "stdout.txt", logs / "stderr.txt"
        self._files: list[IO[str]] = [open(self.stdout_path, "w"), open(self.stderr_path, "w")]  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "typedrunner", *args],
            cwd=REPO,
            env=env,
            stdout=self._files[0],
            stderr=self._files[1],
            text=True,
        )

    def output(self) -> tuple[str, str]:
        return self.stdout_path.read_text(encoding="utf-8"), self.stderr_path.read_text(encoding="utf-8")

    def explain(self) -> str:
        out, err = self.output()
        return f"exit {self.process.returncode}\n--- stdout ---\n{out[-3000:]}\n--- stderr ---\n{err[-3000:]}"

    def wait_until(self, condition: Callable[[], bool], what: str, timeout: float = 120) -> None:
        """Poll ``condition``; fail if the process exits first (or never gets there)."""
        deadline = time.monotonic() + timeout
        while not condition():
            if self.process.poll() is not None:
                pytest.fail(f"exited before {what}: {self.explain()}")
            if time.monotonic() > deadline:
                self.process.kill()
                self.process.wait()
                pytest.fail(f"{what}: not within {timeout} s: {self.explain()}")
            time.sleep(0.002)

    def wait(self) -> int:
        try:
            code = self.process.wait(timeout=300)
        finally:
            for f in self._files:
                f.close()
        return code


def _has_train_line(path: Path) -> Callable[[], bool]:
    def check() -> bool:
        return path.is_file() and any('"mode": "train"' in line for line in path.read_text().splitlines())

    return check


# ----------------------------------------------------------------------------------------------
# 1. Atomic checkpoints under SIGKILL
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
            state = _load(path)
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
    target = _pointer(work_dir)
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
    assert _pointer(work_dir) == work_dir / f"iter_{total}.pth"
    assert _same_weights(_weights(work_dir / f"iter_{total}.pth"), reference.model.state_dict())
    # every checkpoint, whichever child wrote it, equals the uninterrupted run's at that iteration
    for iteration in sorted(complete):
        name = f"iter_{iteration}.pth"
        assert _same_weights(_weights(work_dir / name), _weights(tmp_path / "straight" / name))


# ----------------------------------------------------------------------------------------------
# 2. Graceful stop on SIGTERM / SIGINT
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mlp_reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Tensor]:
    """The final weights of an uninterrupted command-line run of ``_mlp_args`` (2 epochs, 40 iterations)."""
    root = tmp_path_factory.mktemp("reference")
    result = run_cli(_mlp_args(root / "run"), _cli_env(_write_plugins(root)))
    assert result.returncode == 0, explain(result)
    return _weights(root / "run" / "epoch_2.pth")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_cli_stops_on_a_signal_with_a_resumable_checkpoint(
    tmp_path: Path, signum: signal.Signals, mlp_reference: dict[str, Tensor]
) -> None:
    env = _cli_env(_write_plugins(tmp_path))
    run_dir = tmp_path / "run"
    cli = Cli(_mlp_args(run_dir), env, tmp_path / "logs")
    cli.wait_until(_has_train_line(run_dir / "scalars.jsonl"), "training logged its first scalars")
    cli.process.send_signal(signum)
    code = cli.wait()
    out, err = cli.output()
    assert code == 3, cli.explain()
    assert "Traceback" not in err, cli.explain()

    stopped = sorted(run_dir.glob("stopped_iter_*.pth"))
    assert len(stopped) == 1, cli.explain()
    checkpoint = stopped[0]
    iteration = int(checkpoint.stem.removeprefix("stopped_iter_"))
    assert 10 <= iteration < 40  # after the first logged iteration, before the end
    assert f"stopped by {signum.name}" in err and str(checkpoint) in err, cli.explain()
    assert f"resume=true work_dir={run_dir}" in out, cli.explain()  # how to resume
    assert _pointer(run_dir) == checkpoint
    meta = _load(checkpoint)["meta"]
    assert meta["iter"] == iteration and meta["epoch"] * 20 + meta["inner_iter"] == iteration
    assert not (run_dir / "epoch_2.pth").exists()

    resumed = run_cli(_mlp_args(tmp_path / "resumed", f"work_dir={run_dir}", "resume=true"), env)
    assert resumed.returncode == 0, explain(resumed)
    assert json.loads((run_dir / "summary.json").read_text())["iters"] == 40
    assert _same_weights(_weights(run_dir / "epoch_2.pth"), mlp_reference)


def test_cli_second_sigterm_exits_at_once(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    slow = ["+train_dataloader.dataset.delay=0.01", "default_hooks.logger.interval=1"]  # 0.6 s per iteration
    cli = Cli(_mlp_args(run_dir, *slow), _cli_env(_write_plugins(tmp_path)), tmp_path / "logs")
    cli.wait_until(_has_train_line(run_dir / "scalars.jsonl"), "training logged its first scalars")
    cli.process.send_signal(signal.SIGTERM)
    cli.wait_until(lambda: "SIGTERM received" in cli.output()[0], "the first SIGTERM was acknowledged")
    cli.process.send_signal(signal.SIGTERM)
    code = cli.wait()
    assert code == -signal.SIGTERM, cli.explain()  # killed by the signal itself, not a graceful exit 3


class SendSignal(Hook):
    """Sends ``signum`` to this very process once iteration ``at`` (counted from 1) is done."""

    priority = "LOWEST"

    def __init__(self, signum: int, at: int) -> None:
        self.signum = signum
        self.at = at

    def after_train_iter(
        self, runner: Runner, batch_idx: int, data_batch: Any = None, outputs: Mapping[str, Tensor] | None = None
    ) -> None:
        if runner.iter + 1 == self.at:
            os.kill(os.getpid(), self.signum)


def _signal_config(work_dir: Path, **overrides: Any) -> RunnerConfig:
    hooks = DefaultHooks(checkpoint=CheckpointHook(save_best="accuracy", published_keys=["meta", "state_dict"]))
    return toy_config(work_dir, max_epochs=3, seed=3, default_hooks=hooks, **overrides)


@pytest.mark.parametrize(
    ("signum", "at"),
    [(signal.SIGTERM, 6), (signal.SIGINT, 4)],
    ids=["SIGTERM-mid-epoch", "SIGINT-at-the-end-of-an-epoch"],
)
def test_signal_in_process_stops_after_that_iteration_and_resumes_exactly(
    tmp_path: Path, signum: signal.Signals, at: int
) -> None:
    straight = Runner(_signal_config(tmp_path / "straight"))
    straight.train()

    work_dir = tmp_path / "run"
    handler = signal.getsignal(signum)
    runner = Runner(_signal_config(work_dir))
    runner.register_hook(SendSignal(signum, at))
    with pytest.raises(TrainingStopped) as info:
        runner.train()
    assert signal.getsignal(signum) == handler  # the handlers are put back
    checkpoint = work_dir / f"stopped_iter_{at}.pth"
    assert info.value.signal_name == signum.name
    assert info.value.checkpoint == checkpoint
    assert runner.iter == at
    assert _pointer(work_dir) == checkpoint
    meta = _load(checkpoint)["meta"]
    assert (meta["epoch"], meta["iter"], meta["inner_iter"]) == ((at - 1) // 4, at, (at - 1) % 4 + 1)

    resumed = Runner(_signal_config(work_dir, resume=True))
    assert resumed.iter == at
    resumed.train()
    assert _same_weights(resumed.model.state_dict(), straight.model.state_dict())
    assert _same_weights(_weights(work_dir / "epoch_3.pth"), _weights(tmp_path / "straight" / "epoch_3.pth"))


# ----------------------------------------------------------------------------------------------
# 3. Non-finite losses
# ----------------------------------------------------------------------------------------------
class NanAt(ToyDataset):
    """ToyDataset with one NaN coordinate at ``nan_index``."""

    def __init__(self, size: int = 640, nan_index: int = 0) -> None:
        super().__init__(size)
        self.data[nan_index, 0] = float("nan")


NAN_ITER = 13
"""With batches of 16 in order, sample 16 * 12 + 5 is in iteration 13 (counted from 1)."""


def _nan_config(work_dir: Path, **overrides: Any) -> RunnerConfig:
    """40 iterations per epoch in order; the loss is NaN at iteration 13 of each epoch; iteration
    checkpoints every 5; the loss is checked every 10 (the logger's interval) and before each save."""
    values: dict[str, Any] = dict(
        train_dataloader=DataLoader(
            dataset=lazy(NanAt, size=640, nan_index=16 * (NAN_ITER - 1) + 5),
            sampler=DefaultSampler(shuffle=False),
            batch_size=16,
        ),
        default_hooks=DefaultHooks(checkpoint=CheckpointHook(by_epoch=False, interval=5)),
        log_level="WARNING",
    )
    values.update(overrides)
    return toy_config(work_dir, max_epochs=2, **values)


def test_nan_loss_stops_the_run_naming_the_iterations(tmp_path: Path) -> None:
    runner = Runner(_nan_config(tmp_path))
    with pytest.raises(NonFiniteLossError) as info:
        runner.train()
    message = str(info.value)
    assert "NaN or infinite between iterations 11 and 15" in message  # found before iter_15.pth is saved
    assert "loss=nan" in message and "nonfinite: skip" in message
    # the checkpoints from before the NaN are intact and finite
    for name in ("iter_5.pth", "iter_10.pth"):
        state = _load(tmp_path / name)
        assert _finite(state["state_dict"]), name
    assert not (tmp_path / "iter_15.pth").exists()  # it stopped before saving NaN weights


def test_nan_loss_writes_no_checkpoint_after_the_nan(tmp_path: Path) -> None:
    runner = Runner(_nan_config(tmp_path))
    with pytest.raises(NonFiniteLossError):
        runner.train()
    written = sorted(p.name for p in tmp_path.glob("*.pth"))
    non_finite = [p for p in written if not _finite(_weights(tmp_path / p))]
    assert non_finite == [], f"checkpoints with NaN weights: {non_finite} (all: {written})"
    assert _pointer(tmp_path) == tmp_path / "iter_10.pth"


def test_nan_loss_skip_keeps_training_finite(tmp_path: Path) -> None:
    skip = OptimWrapper(optimizer=SGD(lr=0.1), nonfinite="skip")
    runner = Runner(_nan_config(tmp_path, optim_wrapper=skip))
    runner.train()
    assert runner.iter == 80
    wrapper = runner.optim_wrapper
    assert isinstance(wrapper, BuiltOptimWrapper)
    assert wrapper.skipped == 2  # iteration 13 of each epoch
    assert _finite(runner.model.state_dict())
    assert all(_finite(_weights(p)) for p in tmp_path.glob("*.pth"))


def test_cli_nan_loss_exits_1_with_the_message(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    args = _mlp_args(
        run_dir,
        f"+train_dataloader.dataset.nan_index={64 * (NAN_ITER - 1) + 5}",
        "train_dataloader.sampler.shuffle=false",
        dataset=f"{PLUGINS}.NanRings",
    )
    result = run_cli(args, _cli_env(_write_plugins(tmp_path)))
    assert result.returncode == 1, explain(result)
    assert "NaN or infinite between iterations 11 and 20" in result.stderr, explain(result)
    assert "Traceback" not in result.stderr, explain(result)
    assert list(run_dir.glob("*.pth")) == []  # caught at iteration 20, before the end of epoch 1 was saved
    assert "NaN or infinite" in (run_dir / "error_report.txt").read_text()


# ----------------------------------------------------------------------------------------------
# 4. Safe loading
# ----------------------------------------------------------------------------------------------
class RunsCode:
    """Unpickling this calls ``function(argument)``."""

    def __init__(self, function: Callable[[str], object], argument: str) -> None:
        self.function = function
        self.argument = argument

    def __reduce__(self) -> tuple[Callable[[str], object], tuple[str]]:
        return self.function, (self.argument,)


def _payload(kind: str, marker: Path) -> RunsCode:
    if kind == "os.system":
        return RunsCode(os.system, f"touch {marker}")
    return RunsCode(builtins.exec, f"open({str(marker)!r}, 'w').close()")


def _write_malicious(path: Path, kind: str, fmt: str, marker: Path) -> None:
    state = {"meta": {"iter": 1}, "state_dict": {"net.0.weight": _payload(kind, marker)}}
    if fmt == "torch.save":
        torch.save(state, path, pickle_protocol=2)
    else:
        with open(path, "wb") as f:
            pickle.dump(state, f, protocol=pickle.HIGHEST_PROTOCOL)


@pytest.mark.parametrize("fmt", ["torch.save", "pickle"])
@pytest.mark.parametrize("kind", ["os.system", "builtins.exec"])
def test_a_checkpoint_that_runs_code_is_refused(tmp_path: Path, kind: str, fmt: str) -> None:
    # The file is live: unpickled without weights_only, it runs (here: creates another marker).
    control = tmp_path / "control_marker"
    _write_malicious(tmp_path / "control.pth", kind, fmt, control)
    if fmt == "torch.save":
        torch.load(tmp_path / "control.pth", weights_only=False)
    else:
        with open(tmp_path / "control.pth", "rb") as f:
            pickle.load(f)
    assert control.exists()

    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    _write_malicious(evil, kind, fmt, marker)

    with pytest.raises(ConfigError) as loading:
        Runner(toy_config(tmp_path / "load", load_from=str(evil)))
    assert "weights_only=True" in str(loading.value) and str(evil) in str(loading.value)
    with pytest.raises(ConfigError) as resuming:
        Runner(toy_config(tmp_path / "load", load_from=str(evil), resume=True))
    assert [p.path for p in resuming.value.problems] == ["resume"]
    # resume: auto, finding it in work_dir through last_checkpoint
    work_dir = tmp_path / "work"
    work_dir.mkdir()
    os.replace(evil, work_dir / "iter_1.pth")
    (work_dir / "last_checkpoint").write_text(str(work_dir / "iter_1.pth"), encoding="utf-8")
    with pytest.raises(ConfigError) as auto:
        Runner(toy_config(work_dir, resume="auto"))
    assert "cannot load checkpoint" in str(auto.value) and "iter_1.pth" in str(auto.value)
    with pytest.raises(CheckpointError):
        load_checkpoint(work_dir / "iter_1.pth")
    assert not marker.exists()


def test_every_own_checkpoint_loads_with_weights_only(tmp_path: Path) -> None:
    runner = Runner(_signal_config(tmp_path))
    runner.register_hook(SendSignal(signal.SIGTERM, 6))
    with pytest.raises(TrainingStopped):
        runner.train()
    Runner(_signal_config(tmp_path, resume=True)).train()
    iterations = DefaultHooks(checkpoint=CheckpointHook(by_epoch=False, interval=5))
    Runner(toy_config(tmp_path / "iters", default_hooks=iterations)).train()

    paths = sorted([*tmp_path.glob("*.pth"), *(tmp_path / "iters").glob("*.pth")])
    names = [p.name for p in paths]
    for kind in ("stopped_iter_6.pth", "epoch_3.pth", "best_accuracy.pth", "epoch_3_published.pth", "iter_5.pth"):
        assert kind in names, names
    for path in paths:
        state = _load(path)
        assert "state_dict" in state and "meta" in state, path
        assert load_checkpoint(path).keys() == state.keys()


# ----------------------------------------------------------------------------------------------
# 5. The work directory: cannot be created; a checkpoint write that fails part-way
# ----------------------------------------------------------------------------------------------
def test_work_dir_under_a_regular_file_is_refused_before_training(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    cfg = toy_config(blocker / "run")
    with pytest.raises(ContractError) as info:
        Runner.checked(cfg)
    problems = [p for p in info.value.problems if p.severity == "error"]
    assert [p.path for p in problems] == ["work_dir"]
    assert "cannot be created" in problems[0].message and "is not a directory" in problems[0].message

    runner = Runner(cfg)
    assert [p.path for p in runner.check() if p.severity == "error"] == ["work_dir"]
    with pytest.raises(ContractError):
        runner.train()
    assert runner.iter == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]
    assert blocker.read_text() == "not a directory"


@pytest.mark.parametrize(
    "fraction",
    [
        pytest.param(0.5, id="cut-at-half"),
        pytest.param(
            0.25,
            id="cut-at-a-quarter",
        ),
    ],
)
def test_cli_checkpoint_write_failing_part_way_keeps_the_previous_one(tmp_path: Path, fraction: float) -> None:
    run_dir = tmp_path / "run"
    limit = f"+custom_hooks=[{{type:{PLUGINS}.FileSizeLimit,after_epochs:1,fraction:{fraction},priority:LOWEST}}]"
    result = run_cli(_mlp_args(run_dir, limit, dataset="MyDataset"), _cli_env(_write_plugins(tmp_path)))
    assert result.returncode == 1, explain(result)
    # the previous checkpoint is intact, the pointer still names it, the partial file is gone
    assert sorted(p.name for p in run_dir.glob("*.pth")) == ["epoch_1.pth"]
    assert _load(run_dir / "epoch_1.pth")["meta"]["epoch"] == 1
    assert _pointer(run_dir) == run_dir / "epoch_1.pth"
    assert [p.name for p in run_dir.iterdir() if p.name.endswith(".tmp")] == []
    # and the run says so, without a traceback
    assert f"cannot write checkpoint {run_dir / 'epoch_2.pth'}" in result.stderr, explain(result)
    assert "Traceback" not in result.stderr, explain(result)


def _cut_writes(tmp_path: Path, cuts: int = 40) -> Iterator[tuple[int, str, bool, list[str]]]:
    """``save_checkpoint`` over an existing checkpoint in a child whose files may not grow past
    each of ``cuts`` sizes: (size, what the child raised, old file intact, files left over)."""
    old = {"state_dict": {"w": torch.zeros(4000)}, "meta": {"iter": 1}}
    new = {"state_dict": {"w": torch.ones(8000)}, "meta": {"iter": 2}}
    buffer = io.BytesIO()
    torch.save(new, buffer)
    size = len(buffer.getvalue())
    for i in range(1, cuts + 1):
        directory = tmp_path / f"cut_{i}"
        directory.mkdir()
        save_checkpoint(old, directory / "ckpt.pth")
        limit = size * i // (cuts + 1)
        pid = os.fork()
        if pid == 0:  # the child: never returns into pytest
            code = 9
            try:
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
                resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
                save_checkpoint(new, directory / "ckpt.pth")
                code = 0
            except CheckpointError:
                code = 1
            except RuntimeError:
                code = 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        raised = {0: "nothing", 1: "CheckpointError", 2: "RuntimeError"}.get(os.waitstatus_to_exitcode(status), "?")
        intact = _load(directory / "ckpt.pth")["meta"]["iter"] == 1
        yield limit, raised, intact, sorted(p.name for p in directory.iterdir() if p.name != "ckpt.pth")


def test_checkpoint_write_failing_at_any_byte_keeps_the_old_file(tmp_path: Path) -> None:
    for limit, raised, intact, leftovers in _cut_writes(tmp_path):
        assert raised in ("CheckpointError", "RuntimeError"), f"capped at {limit} bytes, the write: {raised}"
        assert intact, f"capped at {limit} bytes, the previous checkpoint was damaged"
        assert leftovers == [], f"capped at {limit} bytes, left {leftovers}"


def test_checkpoint_write_failing_at_any_byte_is_a_checkpoint_error(tmp_path: Path) -> None:
    outcomes = {limit: raised for limit, raised, _, _ in _cut_writes(tmp_path)}
    assert set(outcomes.values()) == {"CheckpointError"}, outcomes


# ----------------------------------------------------------------------------------------------
# 6. Data loading failures
# ----------------------------------------------------------------------------------------------
class Bad(ToyDataset):
    """Sample 777 cannot be read."""

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        if index == 777:
            raise ValueError("corrupt sample")
        return super().__getitem__(index)


class KillsItsWorker(ToyDataset):
    """Reading sample 777 in a dataloader worker kills that worker (as the OOM killer would), once
    the file ``go`` exists: the test decides what the main process is doing at that moment."""

    def __init__(self, size: int = 1024, go: str = "") -> None:
        super().__init__(size)
        self.go = go

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        if index == 777 and get_worker_info() is not None:
            deadline = time.monotonic() + 60
            while not os.path.exists(self.go) and time.monotonic() < deadline:
                time.sleep(0.002)
            time.sleep(0.1)  # margin: the main process is where the test put it
            os.kill(os.getpid(), signal.SIGKILL)
        return super().__getitem__(index)


class Go(Hook):
    """Creates the file ``go`` once iteration ``at`` is done; then stays ``busy`` seconds in this
    hook (standing for a long training step) before training goes on."""

    def __init__(self, go: Path, at: int, busy: float = 0.0) -> None:
        self.go = go
        self.at = at
        self.busy = busy

    def after_train_iter(
        self, runner: Runner, batch_idx: int, data_batch: Any = None, outputs: Mapping[str, Tensor] | None = None
    ) -> None:
        if runner.iter + 1 == self.at:
            self.go.touch()
            deadline = time.monotonic() + self.busy
            while time.monotonic() < deadline:
                time.sleep(0.01)


def _data_config(work_dir: Path, dataset: Any, num_workers: int, **overrides: Any) -> RunnerConfig:
    """1024 samples in order, batches of 16: sample 777 is in iteration 49; a checkpoint every 10."""
    return toy_config(
        work_dir,
        max_epochs=1,
        train_dataloader=DataLoader(
            dataset=dataset, sampler=DefaultSampler(shuffle=False), batch_size=16, num_workers=num_workers
        ),
        default_hooks=DefaultHooks(checkpoint=CheckpointHook(by_epoch=False, interval=10)),
        log_level="WARNING",
        **overrides,
    )


def _train_and_release(runner: Runner) -> tuple[str, str]:
    """Train; return what it raised (type name, message), with every reference to the failed
    dataloader dropped and collected: a dead worker's pid left registered with torch's SIGCHLD
    handler would make any later child process exit raise in whatever code is running."""
    raised = ("nothing", "")
    try:
        runner.train()
    except Exception as e:
        raised = (type(e).__name__, str(e))
        error: BaseException | None = e
        while error is not None:  # the frames hold the dataloader iterator: let it shut down now
            traceback.clear_frames(error.__traceback__)
            error = error.__cause__ or error.__context__
    gc.collect()
    return raised


def _assert_last_checkpoint_intact_and_resumable(work_dir: Path) -> None:
    assert sorted(p.name for p in work_dir.glob("*.pth")) == [f"iter_{i}.pth" for i in (10, 20, 30, 40)]
    assert _pointer(work_dir) == work_dir / "iter_40.pth"
    assert _load(work_dir / "iter_40.pth")["meta"]["iter"] == 40
    # the data fixed, the run resumes from it and finishes
    fixed = Runner(_data_config(work_dir, lazy(ToyDataset, size=1024), 0, resume=True))
    assert fixed.iter == 40
    fixed.train()
    assert fixed.iter == 64


@pytest.mark.parametrize("num_workers", [0, 2], ids=["in-process", "in-a-worker"])
def test_a_sample_that_raises_is_named_and_the_last_checkpoint_stays(tmp_path: Path, num_workers: int) -> None:
    runner = Runner(_data_config(tmp_path, lazy(Bad, size=1024), num_workers))
    raised, message = _train_and_release(runner)
    assert raised == "DataLoadingError", message
    assert "train_dataloader (Bad): Bad[777] raised ValueError: corrupt sample" in message
    assert "resume=true" in message
    assert runner.iter == 48  # iterations 1-48 done; 49 holds sample 777
    _assert_last_checkpoint_intact_and_resumable(tmp_path)


def test_a_killed_worker_is_named_and_the_last_checkpoint_stays(tmp_path: Path) -> None:
    go = tmp_path / "go"
    runner = Runner(_data_config(tmp_path / "run", lazy(KillsItsWorker, size=1024, go=str(go)), 2))
    runner.register_hook(Go(go, at=48))  # the worker dies while the main process waits for batch 49
    raised, message = _train_and_release(runner)
    assert raised == "DataLoadingError", message
    assert "train_dataloader (KillsItsWorker): a dataloader worker died" in message
    assert "resume=true" in message
    assert runner.iter == 48
    _assert_last_checkpoint_intact_and_resumable(tmp_path / "run")


def test_a_worker_killed_during_a_training_step_is_a_data_loading_error(tmp_path: Path) -> None:
    go = tmp_path / "go"
    runner = Runner(_data_config(tmp_path / "run", lazy(KillsItsWorker, size=1024, go=str(go)), 2))
    runner.register_hook(Go(go, at=45, busy=3.0))  # batch 49 is being prefetched by then
    raised, message = _train_and_release(runner)
    assert sorted(p.name for p in (tmp_path / "run").glob("*.pth"))[-1] == "iter_40.pth"
    assert (raised, "a dataloader worker died" in message) == ("DataLoadingError", True), (raised, message)


# ----------------------------------------------------------------------------------------------
# 7. A config names a class to build, never a function to call
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "spec"),
    [
        ("model", {"type": "os.system", "command": "touch {marker}"}),
        ("model", {"type": "subprocess.Popen", "args": ["touch", "{marker}"]}),
        ("model", {"type": "builtins.exec", "source": "open('{marker}', 'w').close()"}),
        ("train_dataloader.dataset", {"type": "subprocess.Popen", "args": ["touch", "{marker}"]}),
        ("custom_hooks", [{"type": "os.system", "command": "touch {marker}"}]),
        ("custom_hooks", [{"type": "subprocess.Popen", "args": ["touch", "{marker}"]}]),
    ],
    ids=["model-os.system", "model-Popen", "model-exec", "dataset-Popen", "hook-os.system", "hook-Popen"],
)
def test_a_type_naming_a_function_or_a_foreign_class_is_refused(tmp_path: Path, path: str, spec: Any) -> None:
    marker = tmp_path / "pwned"
    spec = json.loads(json.dumps(spec).replace("{marker}", str(marker)))
    data = toy_config(tmp_path / "run").model_dump(mode="json")
    parent, _, key = path.rpartition(".")
    (data[parent] if parent else data)[key] = spec
    with pytest.raises(ConfigError) as info:
        Runner(data)
    assert any(p.path.startswith(path.split(".")[0]) and p.path.endswith("type") for p in info.value.problems), str(
        info.value
    )
    assert not marker.exists()
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "overrides",
    [
        ["model.type=os.system", "~model.layers", "~model.activation", "+model.command='touch {marker}'"],
        ["model.type=subprocess.Popen", "~model.layers", "~model.activation", "+model.args=[touch,'{marker}']"],
    ],
    ids=["os.system", "subprocess.Popen"],
)
def test_cli_type_naming_a_function_or_a_foreign_class_exits_2(
    tmp_path: Path, overrides: list[str], subprocess_env: dict[str, str]
) -> None:
    marker = tmp_path / "pwned"
    args = ["+experiment=mlp", *FAST, f"hydra.run.dir={tmp_path / 'run'}"]
    result = run_cli([*args, *(o.replace("{marker}", str(marker)) for o in overrides)], subprocess_env)
    assert result.returncode == 2, explain(result)
    assert "model.type" in result.stderr and overrides[0].split("=")[1] in result.stderr, explain(result)
    assert "Traceback" not in result.stderr, explain(result)
    assert not marker.exists()
    assert list((tmp_path / "run").glob("*.pth")) == []
    # the command itself works: it is refused, not broken
    subprocess.run(["touch", str(marker)], check=True)
    assert marker.exists()
