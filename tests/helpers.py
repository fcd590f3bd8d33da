"""Helpers shared by the test modules: constants, builders and checks that more than one module uses.

Fixtures live in ``tests/conftest.py``; no test module imports another test module.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import pytest
import torch
from torch import Tensor, nn

from typedrunner.app.compose import compose, to_runner_config
from typedrunner.config import (
    CheckpointHook,
    DefaultHooks,
    RunnerConfig,
)
from typedrunner.errors import ConfigError, Problem, Severity
from typedrunner.hooks import Hook, RunView
from typedrunner.parts.optim import OptimWrapper as BuiltOptimWrapper
from typedrunner.runner import Runner
from typedrunner.testing import (
    Interrupt,
    Interrupted,
    RecordingHook,
    ToyModel,
    toy_config,
)
from typedrunner.visualization import Visualizer

# ----------------------------------------------------------------------------------------------
# Command-line subprocesses, paths and checkpoints shared by many modules
# ----------------------------------------------------------------------------------------------
REPO = Path(__file__).resolve().parents[1]
"""The repository root (holds conf/ and examples/)."""
CONF = REPO / "conf"
FAST = ["~param_scheduler", "train_dataloader.num_workers=0", "val_dataloader.num_workers=0"]
"""Overrides that keep a command-line run of the seed experiment quick (no scheduler, no workers)."""
ITERS = 4  # toy_config: 64 training samples, batch 16


def run_cli(args: list[str], env: dict[str, str], cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """``python -m typedrunner ARGS`` in a fresh process (the env from the ``subprocess_env`` fixture)."""
    return subprocess.run(
        [sys.executable, "-m", "typedrunner", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def explain(result: subprocess.CompletedProcess[str]) -> str:
    """A failed run's exit code and the ends of its output, for assertion messages."""
    return f"exit {result.returncode}\n--- stdout ---\n{result.stdout[-3000:]}\n--- stderr ---\n{result.stderr[-3000:]}"


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint file's contents, loaded safely (``weights_only``) onto the CPU."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert isinstance(state, dict)
    return state


def runner_weights(runner: Runner) -> dict[str, Tensor]:
    """A copy of the runner's model weights."""
    return {k: v.detach().clone() for k, v in runner.model.state_dict().items()}


# ----------------------------------------------------------------------------------------------
# Extra hooks and run options (test_extra_hooks, test_run_options): model parameters
# ----------------------------------------------------------------------------------------------
Weights = dict[str, Tensor]


def parameters_of(model: torch.nn.Module) -> Weights:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def weights_close(a: Weights, b: Weights) -> bool:
    return a.keys() == b.keys() and all(torch.allclose(a[k], b[k], rtol=1e-5, atol=1e-7) for k in a)


# ----------------------------------------------------------------------------------------------
# Fail fast (test_fail_fast_*): composed seed configs and problem lookups
# ----------------------------------------------------------------------------------------------
SEED = ["+experiment=mlp", "train_dataloader.num_workers=0", "val_dataloader.num_workers=0"]
SMALL = [*SEED, "train_dataloader.dataset.size=256", "val_dataloader.dataset.size=64"]
"""The seed (10 epochs, MultiStepLR at epochs 4 and 8) on 256 training points: 4 iterations per epoch."""


def seed_config(repo_root: Path, work_dir: Path, *overrides: str, base: Sequence[str] = SMALL) -> RunnerConfig:
    """The seed experiment composed from conf/ with ``overrides``, validated (raises ConfigError)."""
    composed = compose([*base, f"work_dir='{work_dir}'", *overrides], config_dir=str(repo_root / "conf"))
    config, _ = to_runner_config(composed)
    return config


def find(problems: Sequence[Problem], path: str, *fragments: str, severity: Severity = "error") -> Problem:
    """The one problem at ``path`` whose message holds every fragment; fails listing what was found."""
    listing = "\n".join(f"  [{p.severity}] {p.path}: {p.message}" for p in problems)
    matches = [p for p in problems if p.path == path and all(f in p.render() for f in fragments)]
    assert matches, f"no problem at {path!r} containing {fragments}; found:\n{listing}"
    assert matches[0].severity == severity, f"{path}: expected {severity}, got {matches[0].severity}\n{listing}"
    return matches[0]


def config_problems(make: Callable[[], object]) -> list[Problem]:
    """The problems of the ConfigError that ``make()`` (validating and building) raises."""
    with pytest.raises(ConfigError) as info:
        make()
    return list(info.value.problems)


def assert_nothing_trained(work_dir: Path, hook: RecordingHook | None = None) -> None:
    if hook is not None:
        assert "before_train_iter" not in hook.names(), hook.names()
        assert "before_run" not in hook.names(), hook.names()
    assert list(work_dir.rglob("*.pth")) == []
    assert list(work_dir.rglob("scalars.jsonl")) == []


def recording_runner(cfg: RunnerConfig) -> tuple[Runner, RecordingHook]:
    runner = Runner(cfg)
    hook = RecordingHook()
    runner.register_hook(hook)
    return runner, hook


def state(module: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def assert_bit_identical(a: Mapping[str, Tensor], b: Mapping[str, Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key} differs"


# ----------------------------------------------------------------------------------------------
# Reliability (test_reliability_*): checkpoints, plugins for the command line, signals
# ----------------------------------------------------------------------------------------------
PLUGINS = "reliability_plugins"
"""A module written to ``tmp_path`` and put on the children's PYTHONPATH (the CLI imports it)."""
PLUGINS_SOURCE = '''
"""Test plugins for the command line: a slow dataset, a NaN dataset, a hook that caps file sizes."""
from __future__ import annotations

import atexit
import os
import resource
import signal
import time
from typing import Any

from examples.seed_mlp import MyDataset
from typedrunner.hooks import Hook, RunView
from typedrunner.runner import Runner


class Slow(MyDataset):
    """The seed's rings; each sample takes ``delay`` seconds to load."""

    def __init__(self, is_train: bool, size: int, delay: float = 0.0005) -> None:
        super().__init__(is_train, size)
        self.delay = delay

    def __getitem__(self, index: int) -> Any:
        time.sleep(self.delay)
        return super().__getitem__(index)


class InterruptedAtBuild(MyDataset):
    """The seed's rings; building it sends this process SIGINT, as a Ctrl-C during start-up would."""

    def __init__(self, is_train: bool, size: int) -> None:
        super().__init__(is_train, size)
        os.kill(os.getpid(), signal.SIGINT)


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

    def after_train_epoch(self, runner: RunView) -> None:
        if runner.epoch + 1 == self.after_epochs:
            size = (runner.work_dir / f"epoch_{self.after_epochs}.pth").stat().st_size
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (int(size * self.fraction), resource.RLIM_INFINITY))
'''


def checkpoint_weights(path: Path) -> dict[str, Tensor]:
    """The model weights in a checkpoint file."""
    weights: dict[str, Tensor] = read_checkpoint(path)["state_dict"]
    return weights


def same_weights(a: Mapping[str, Tensor], b: Mapping[str, Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def resolved_pointer(work_dir: Path) -> Path:
    """The file ``last_checkpoint`` names, as a path in work_dir."""
    target = Path((work_dir / "last_checkpoint").read_text(encoding="utf-8").strip())
    return target if target.is_absolute() else work_dir / target


def write_plugins(tmp_path: Path) -> Path:
    directory = tmp_path / "plugins"
    directory.mkdir(exist_ok=True)
    (directory / f"{PLUGINS}.py").write_text(PLUGINS_SOURCE, encoding="utf-8")
    return directory


def cli_env(*paths: Path) -> dict[str, str]:
    """Environment for CLI subprocesses: one thread, the repo (and ``paths``) importable, no inherited
    Hydra trace flag (conftest's ``subprocess_env``; module fixtures call it directly)."""
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), *map(str, paths), env.get("PYTHONPATH", "")) if p)
    env.pop("HYDRA_FULL_ERROR", None)
    return env


def plugin_cli_env(plugins: Path) -> dict[str, str]:
    """:func:`cli_env` with the plugins importable too."""
    return cli_env(plugins)


def mlp_args(run_dir: Path, *extra: str, dataset: str = f"{PLUGINS}.Slow") -> list[str]:
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


class SendSignal(Hook):
    """Sends ``signum`` to this very process once iteration ``at`` (counted from 1) is done."""

    priority = "LOWEST"

    def __init__(self, signum: int, at: int) -> None:
        self.signum = signum
        self.at = at

    def after_train_iter(
        self, runner: RunView, batch_idx: int, data_batch: Any = None, outputs: Mapping[str, Tensor] | None = None
    ) -> None:
        if runner.iter + 1 == self.at:
            os.kill(os.getpid(), self.signum)


def signal_config(work_dir: Path, **overrides: Any) -> RunnerConfig:
    hooks = DefaultHooks(checkpoint=CheckpointHook(save_best="accuracy", published_keys=["meta", "state_dict"]))
    return toy_config(work_dir, max_epochs=3, seed=3, default_hooks=hooks, **overrides)


# ----------------------------------------------------------------------------------------------
# Resume (test_resume_*): interruptions and exact comparisons
# ----------------------------------------------------------------------------------------------
ITERS_PER_EPOCH = ITERS  # toy_config: 64 training samples, batch 16


def optim_wrapper_of(runner: RunView) -> BuiltOptimWrapper:
    assert isinstance(runner.optim_wrapper, BuiltOptimWrapper)
    return runner.optim_wrapper


def assert_same_state(a: Any, b: Any, where: str = "") -> None:
    """Equal structure, equal plain values, bit-identical tensors."""
    if isinstance(a, Tensor):
        assert isinstance(b, Tensor), where
        assert a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, Mapping):
        assert isinstance(b, Mapping), where
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same_state(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_state(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def pointer_target(work_dir: Path) -> Path:
    """The file ``last_checkpoint`` names (relative to work_dir), resolved."""
    return resolved_pointer(work_dir).resolve()


def interrupted_run(cfg: RunnerConfig, interrupt: Interrupt, *hooks: Hook) -> Runner:
    runner = Runner(cfg)
    for hook in (*hooks, interrupt):
        runner.register_hook(hook)
    with pytest.raises(Interrupted):
        runner.train()
    return runner


# ----------------------------------------------------------------------------------------------
# Schemas (test_schemas_*): configs and their problems
# ----------------------------------------------------------------------------------------------
MODEL: dict[str, Any] = {"type": "MyAwesomeModel", "layers": 2, "activation": "relu"}
DATASET: dict[str, Any] = {"type": "MyDataset", "is_train": True, "size": 8}


def problems_of(data: Mapping[str, Any]) -> tuple[Problem, ...]:
    """The problems ``RunnerConfig.from_dict`` reports for ``data`` (which must be invalid)."""
    with pytest.raises(ConfigError) as info:
        RunnerConfig.from_dict(data)
    assert info.value.problems, "a ConfigError must hold at least one problem"
    return info.value.problems


def only_problem(data: Mapping[str, Any]) -> Problem:
    problems = problems_of(data)
    assert len(problems) == 1, [p.render() for p in problems]
    return problems[0]


def with_model(**fields: Any) -> dict[str, Any]:
    return {"model": dict(MODEL), **fields}


# ----------------------------------------------------------------------------------------------
# Sweeps (test_sweeps): the seed for one epoch, the report callback, a SLURM job pickled in a child
# ----------------------------------------------------------------------------------------------
ONE_EPOCH = [
    "+experiment=mlp",
    "train_cfg.max_epochs=1",
    "train_cfg.val_begin=1",
    "~param_scheduler",
    "train_dataloader.num_workers=0",
    "val_dataloader.num_workers=0",
]
REPORT = "hydra/callbacks=sweep_report"
SLURM_JOB = "4242"


def pickle_slurm_job(sweep_dir: str, preset: str = "slurm", extra: Sequence[str] = ()) -> None:
    """Run in a child process: compose ``hydra/launcher=<preset>`` (and the ``extra`` overrides) as
    ``python -m typedrunner -m`` does, instantiate the launcher, render its sbatch header with submitit,
    and pickle job 0 exactly as ``SlurmLauncher.launch`` hands it to submitit
    (``DelayedSubmission(launcher, *job_params)``)."""
    from hydra import compose, initialize_config_dir
    from hydra._internal.callbacks import Callbacks
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.plugins import Plugins
    from hydra.core.singleton import Singleton
    from hydra.types import HydraContext
    from submitit.helpers import DelayedSubmission
    from submitit.slurm.slurm import SlurmExecutor, _make_sbatch_string

    from typedrunner.app.cli import _task

    overrides = [f"hydra/launcher={preset}", REPORT, "hydra.mode=MULTIRUN", f"hydra.sweep.dir={sweep_dir}", *ONE_EPOCH]
    overrides += extra
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
        loader = GlobalHydra.instance().config_loader()
        context = HydraContext(config_loader=loader, callbacks=Callbacks(cfg))
        launcher: Any = Plugins.instance().instantiate_launcher(config=cfg, hydra_context=context, task_function=_task)
    print("launcher:", type(launcher).__name__)

    names = SlurmExecutor._equivalence_dict()
    skip = ("submitit_folder", "max_num_timeout")
    sbatch: dict[str, Any] = {str(names.get(k, k)): v for k, v in launcher.params.items() if k not in skip}
    sbatch["mem"] = f"{sbatch['mem']}GB"
    print(
        _make_sbatch_string(
            command="python -m submitit.core._submit", folder=launcher.params["submitit_folder"], map_count=1, **sbatch
        )
    )

    job_params = (
        [*ONE_EPOCH, *extra, "optim_wrapper.optimizer.lr=0.01"],
        "hydra.sweep.dir",
        0,
        "job_id_for_0",
        Singleton.get_state(),
    )
    folder = Path(launcher.params["submitit_folder"].replace("%j", f"{SLURM_JOB}_0"))
    folder.mkdir(parents=True)
    DelayedSubmission(launcher, *job_params).dump(folder / f"{SLURM_JOB}_0_submitted.pkl")


# ----------------------------------------------------------------------------------------------
# Recorders (test_runner, test_resume_exact)
# ----------------------------------------------------------------------------------------------
class LossHook(Hook):
    """Captures every iteration's loss from the train step's outputs."""

    def __init__(self) -> None:
        self.losses: list[Tensor] = []

    def after_train_iter(
        self, runner: RunView, batch_idx: int, data_batch: Any = None, outputs: Mapping[str, Tensor] | None = None
    ) -> None:
        assert outputs is not None
        self.losses.append(outputs["loss"].detach().clone())


# ----------------------------------------------------------------------------------------------
# The visualizer (test_visualizer): a user hook that logs a value of its own
# ----------------------------------------------------------------------------------------------
class LogOwnScalar(Hook):
    """After each validation, logs ``custom/epoch_squared`` through the public ``runner.visualizer``."""

    def after_val_epoch(self, runner: RunView, metrics: Mapping[str, float] | None = None) -> None:
        runner.visualizer.add_scalars({"epoch_squared": float(runner.epoch**2)}, step=runner.iter, mode="custom")


_LEFT_OPEN: list[Any] = []


class LeavesWorkForExit(Hook):
    """At the end of the run: a file left open with its text still in the buffer, an ``atexit``
    handler and a thread (not a daemon) that writes a moment later, each writing into the work_dir:
    what a process's normal exit completes (test_cli_exit)."""

    def after_run(self, runner: RunView) -> None:
        work_dir = Path(runner.work_dir)
        unclosed = (work_dir / "unclosed.txt").open("w", encoding="utf-8")
        unclosed.write("written, never closed\n")  # far below the buffer's size: not on disk yet
        _LEFT_OPEN.append(unclosed)
        atexit.register((work_dir / "atexit.txt").write_text, "atexit ran\n")

        def late() -> None:
            time.sleep(0.5)
            (work_dir / "thread.txt").write_text("thread finished\n")

        threading.Thread(target=late, daemon=False).start()


class NoMatplotlibWhileTraining(Hook):
    """Fails the run if matplotlib has been imported by the time an iteration ends (test_curves)."""

    def after_train_iter(
        self, runner: RunView, batch_idx: int, data_batch: Any = None, outputs: Mapping[str, Tensor] | None = None
    ) -> None:
        if "matplotlib" in sys.modules:
            raise RuntimeError("matplotlib was imported on the training path")


class SelfLoggingModel(ToyModel):
    """The toy model, logging its batch size through ``Visualizer.get_current_instance()`` (test_visualizer)."""

    def forward(self, data: Tensor, labels: Tensor, mode: str = "tensor") -> Any:
        if mode == "loss":
            Visualizer.get_current_instance().add_scalars({"batch_size": float(len(data))}, mode="model")
        return super().forward(data, labels, mode)


class BackgroundCli:
    """``python -m typedrunner`` running in the background, its output going to files; with
    ``own_session``, in its own process group (as under SLURM), which a timeout kills whole."""

    def __init__(self, args: list[str], env: dict[str, str], logs: Path, own_session: bool = False) -> None:
        logs.mkdir(parents=True, exist_ok=True)
        self.stdout_path, self.stderr_path = logs / "stdout.txt", logs / "stderr.txt"
        self._files: list[IO[str]] = [open(self.stdout_path, "w"), open(self.stderr_path, "w")]  # noqa: SIM115
        self.own_session = own_session
        self.process = subprocess.Popen(
            [sys.executable, "-m", "typedrunner", *args],
            cwd=REPO,
            env=env,
            stdout=self._files[0],
            stderr=self._files[1],
            text=True,
            start_new_session=own_session,
        )

    def output(self) -> tuple[str, str]:
        return self.stdout_path.read_text(encoding="utf-8"), self.stderr_path.read_text(encoding="utf-8")

    def explain(self) -> str:
        out, err = self.output()
        return f"exit {self.process.returncode}\n--- stdout ---\n{out[-3000:]}\n--- stderr ---\n{err[-3000:]}"

    def _kill(self) -> None:
        if self.own_session:
            os.killpg(self.process.pid, signal.SIGKILL)
        else:
            self.process.kill()
        self.process.wait()

    def wait_until(self, condition: Callable[[], bool], what: str, timeout: float = 120) -> None:
        """Poll ``condition``; fail if the process exits first (or never gets there)."""
        deadline = time.monotonic() + timeout
        while not condition():
            if self.process.poll() is not None:
                pytest.fail(f"exited before {what}: {self.explain()}")
            if time.monotonic() > deadline:
                self._kill()
                pytest.fail(f"{what}: not within {timeout} s: {self.explain()}")
            time.sleep(0.002)

    def wait(self, timeout: float = 300) -> int:
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._kill()
            pytest.fail(f"did not exit within {timeout} s: {self.explain()}")
        finally:
            for f in self._files:
                f.close()
        return code
