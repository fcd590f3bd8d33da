"""What failing fast costs on the seed workload: config validation, the contract probe, and the
time a broken run takes to say so, against the time a good run takes to start training.

Run from the repository root (the directory holding ``conf/``)::

    OMP_NUM_THREADS=1 python benchmarks/fail_fast.py [--runs N]

The acceptance budget being measured:

- "The probe costs at most one train batch and one val batch of compute, plus building what
  training builds anyway. On the seed workload, time from process start to the error report for a
  contract mismatch is at most the time a good run takes to reach its first iteration, +10%."
- "Validating the seed config (after imports) takes under 50 ms."

Three measurements:

1. **Validation time.** A fresh interpreter (so pydantic's per-signature models are not built yet)
   imports typedrunner and ``examples.seed_mlp``, composes ``+experiment=mlp`` with Hydra's compose
   API and turns it into a plain dict (none of that is timed), drops the command line's own keys
   (``typedrunner.app.compose.CLI_KEYS``), then times the first ``RunnerConfig.from_dict`` (cold) and the
   median of 20 more (warm). The target is judged on the cold number.
2. **Process start -> error report, against process start -> first iteration.** Fresh
   ``python -m typedrunner +experiment=mlp`` processes (one epoch, ``val_begin=1``, ``num_workers=0``,
   no param_scheduler), ``--runs`` of each kind, alternating, in a different order each round:

   - *good*: the seed, timed from launch to its first ``before_train_iter`` by
     ``benchmarks.overhead.FirstIterHook`` (given as ``+custom_hooks``);
   - *contract mismatch*: the train dataset replaced by a subclass of the seed's that holds float64
     data (a module written into a temporary directory put on ``PYTHONPATH`` and added to
     ``custom_imports``), which only the probe can catch: the process must exit with status 2 and
     name float64 on stderr;
   - *cross-field error*: ``param_scheduler.milestones=[40]`` in a one-epoch run, refused before
     anything is built (exit status 2, naming the milestones).

   A failing run is timed from launch to its exit, and to the moment it wrote ``error_report.txt``
   (the file's modification time). The target, mismatch <= 1.10x good, is judged on the exit.
3. **The probe's own cost, in this process.** ``Runner(config)`` on the seed (``num_workers=0``);
   ``runner.check()`` timed (first call, then the median of 5), against one iteration done by hand
   on the same model and loaders: the first train batch of 64 read from the loader, forward in
   ``loss`` mode and backward, then the 1000-sample val batch read and a ``predict`` forward under
   ``no_grad`` with the accuracy computed (first, then the median of 5).

The numbers are noisy on a busy machine: the script prints every run, reports medians, asserts
nothing and always exits 0.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

VALIDATION_TARGET_MS = 50.0
STARTUP_TARGET_RATIO = 1.10
WARM_VALIDATIONS = 20
PROBE_REPEATS = 5
CHILD_FLAG = "--validation-child"

# The mismatch: a dataset that passes every schema (it is a real Dataset taking the seed's arguments)
# but yields float64 data to a float32 model. Only running a batch through the model shows it.
MISMATCH_MODULE = "probe_mismatch"
MISMATCH_SOURCE = '''"""A contract mismatch for benchmarks/fail_fast.py: float64 data for a float32 model."""
from examples.seed_mlp import MyDataset


class Float64Rings(MyDataset):
    def __init__(self, is_train: bool, size: int) -> None:
        super().__init__(is_train, size)
        self.data = self.data.double()
'''

# One epoch, validation after it, no worker processes: what benchmarks/overhead.py times too.
BASE_OVERRIDES = (
    "+experiment=mlp",
    "train_cfg.max_epochs=1",
    "train_cfg.val_begin=1",  # the config rejects val_begin > max_epochs
    "train_dataloader.num_workers=0",
    "val_dataloader.num_workers=0",
)


# ----------------------------------------------------------------------------------------------
# 1. Validation time (in a fresh interpreter)
# ----------------------------------------------------------------------------------------------
def validation_child() -> None:
    """Runs in the fresh interpreter: print ``{"cold_ms": ..., "warm_ms": [...]}`` as one JSON line."""
    import examples.seed_mlp  # noqa: F401  (registers the seed's model, dataset and metric)
    import typedrunner  # noqa: F401
    from typedrunner.app.compose import CLI_KEYS, compose, to_plain
    from typedrunner.config.runner import RunnerConfig

    with tempfile.TemporaryDirectory(prefix="tr_validate_") as work_dir:
        data = to_plain(compose(["+experiment=mlp", f"work_dir={work_dir}"], str(REPO_ROOT / "conf")))
        for key in CLI_KEYS:
            data.pop(key, None)
        start = time.perf_counter()
        RunnerConfig.from_dict(data)
        cold = time.perf_counter() - start
        warm: list[float] = []
        for _ in range(WARM_VALIDATIONS):
            start = time.perf_counter()
            RunnerConfig.from_dict(data)
            warm.append(time.perf_counter() - start)
    print(json.dumps({"cold_ms": cold * 1e3, "warm_ms": [w * 1e3 for w in warm]}))


@dataclass
class ValidationTimes:
    cold_ms: float
    warm_ms: list[float]

    @property
    def warm_median_ms(self) -> float:
        return statistics.median(self.warm_ms)


def measure_validation() -> ValidationTimes:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), CHILD_FLAG],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:] + "\n")
        raise RuntimeError(f"the validation child failed (exit {proc.returncode})")
    result = json.loads(lines[-1])
    return ValidationTimes(float(result["cold_ms"]), [float(v) for v in result["warm_ms"]])


# ----------------------------------------------------------------------------------------------
# 2. Process start -> error report, against process start -> first training iteration
# ----------------------------------------------------------------------------------------------
@dataclass
class FailedRun:
    to_exit: float
    """Seconds from launch to the process's exit."""
    to_report: float
    """Seconds from launch to the last write of ``error_report.txt``."""


def _cli(overrides: Sequence[str], run_dir: Path) -> list[str]:
    return [sys.executable, "-m", "typedrunner", *overrides, f"hydra.run.dir={run_dir}"]


def time_good_run(run_dir: Path, marker: Path) -> float:
    """Launch -> first training iteration of the seed, by ``benchmarks.overhead.FirstIterHook``."""
    from benchmarks.overhead import FirstIterHook, time_to_first_iter

    hook = f"{FirstIterHook.__module__}.{FirstIterHook.__qualname__}"
    command = _cli([*BASE_OVERRIDES, "~param_scheduler", f"+custom_hooks=[{{type: {hook}}}]"], run_dir)
    return time_to_first_iter(command, marker)


def time_failed_run(overrides: Sequence[str], run_dir: Path, pythonpath: str | None, must_mention: str) -> FailedRun:
    """Launch a run that must be refused (exit 2, ``must_mention`` on stderr); time it to exit and to its report."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (pythonpath, env.get("PYTHONPATH")) if p)
    command = _cli(overrides, run_dir)
    launched = time.time()
    proc = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False)
    exited = time.time()
    report = run_dir / "error_report.txt"
    if proc.returncode != 2 or must_mention not in proc.stderr or not report.is_file():
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:] + "\n")
        raise RuntimeError(
            f"expected exit 2 naming {must_mention!r} and an error_report.txt; got exit {proc.returncode}: {command[3:]}"
        )
    return FailedRun(exited - launched, report.stat().st_mtime - launched)


@dataclass
class StartupTimes:
    good: list[float]
    mismatch: list[FailedRun]
    cross_field: list[FailedRun]


def startup_times(runs: int) -> StartupTimes:
    times = StartupTimes([], [], [])
    with tempfile.TemporaryDirectory(prefix="fail_fast_bench_") as tmp_name:
        tmp = Path(tmp_name)
        module_dir = tmp / "modules"
        module_dir.mkdir()
        (module_dir / f"{MISMATCH_MODULE}.py").write_text(MISMATCH_SOURCE, encoding="utf-8")
        marker = tmp / "first_iter"
        mismatch_overrides = [
            *BASE_OVERRIDES,
            "~param_scheduler",
            f"custom_imports=[examples.seed_mlp,{MISMATCH_MODULE}]",
            f"train_dataloader.dataset.type={MISMATCH_MODULE}.Float64Rings",
        ]
        cross_field_overrides = [*BASE_OVERRIDES, "param_scheduler.milestones=[40]"]

        def good(i: int) -> None:
            times.good.append(time_good_run(tmp / f"good{i}", marker))

        def mismatch(i: int) -> None:
            run = time_failed_run(mismatch_overrides, tmp / f"mismatch{i}", str(module_dir), "float64")
            times.mismatch.append(run)

        def cross_field(i: int) -> None:
            run = time_failed_run(cross_field_overrides, tmp / f"cross{i}", None, "milestones")
            times.cross_field.append(run)

        kinds: list[Callable[[int], None]] = [good, mismatch, cross_field]
        for i in range(runs):
            order = kinds[i % 3 :] + kinds[: i % 3]  # a different kind goes first each round
            for kind in order:
                kind(i)
            print(
                f"  run {i + 1}: good -> first iter {times.good[-1]:.3f} s; "
                f"mismatch -> report {times.mismatch[-1].to_report:.3f} s, exit {times.mismatch[-1].to_exit:.3f} s; "
                f"cross-field -> report {times.cross_field[-1].to_report:.3f} s, "
                f"exit {times.cross_field[-1].to_exit:.3f} s"
            )
    return times


# ----------------------------------------------------------------------------------------------
# 3. The probe's own cost, in this process
# ----------------------------------------------------------------------------------------------
@dataclass
class ProbeCost:
    build_s: float
    build_imported_dynamo: bool
    """Whether building the Runner imported ``torch._dynamo`` (torch.optim does on its first optimizer)."""
    probe_first_s: float
    probe_s: list[float]
    hand_first_s: float
    hand_s: list[float]
    hand_compute_s: list[float]
    """The hand iteration without reading the two batches from their loaders."""


def probe_cost() -> ProbeCost:
    import torch

    import examples.seed_mlp  # noqa: F401  (registers the seed's model, dataset and metric)
    from typedrunner.app.compose import CLI_KEYS, compose, to_plain
    from typedrunner.config.runner import RunnerConfig
    from typedrunner.runner import Runner

    with tempfile.TemporaryDirectory(prefix="tr_probe_") as work_dir:
        overrides = [*BASE_OVERRIDES, "~param_scheduler", f"work_dir={work_dir}"]
        data = to_plain(compose(overrides, str(REPO_ROOT / "conf")))
        for key in CLI_KEYS:
            data.pop(key, None)
        config = RunnerConfig.from_dict(data)
        had_dynamo = "torch._dynamo" in sys.modules
        start = time.perf_counter()
        runner = Runner(config)
        build_s = time.perf_counter() - start
        imported_dynamo = not had_dynamo and "torch._dynamo" in sys.modules

        def probe() -> float:
            start = time.perf_counter()
            findings = runner.check()
            seconds = time.perf_counter() - start
            if any(p.severity == "error" for p in findings):
                raise RuntimeError(f"the seed's probe found errors: {findings}")
            return seconds

        model = runner.model
        assert runner.train_loop is not None and runner.val_loop is not None
        train_loader: Any = runner.train_loop.dataloader
        val_loader: Any = runner.val_loop.dataloader

        def hand() -> tuple[float, float]:
            """One train batch forward+backward and one val batch forward; (total, compute only) seconds."""
            start = time.perf_counter()
            data, labels = next(iter(train_loader))
            compute_start = time.perf_counter()
            model.train()
            loss = model(data, labels, mode="loss")["loss"]
            loss.backward()
            model.zero_grad(set_to_none=True)
            compute = time.perf_counter() - compute_start
            val_data, val_labels = next(iter(val_loader))
            compute_start = time.perf_counter()
            model.eval()
            with torch.no_grad():
                scores, gt = model(val_data, val_labels, mode="predict")
                accuracy = 100 * int((scores.argmax(dim=1) == gt).sum()) / len(gt)
            model.train()
            compute += time.perf_counter() - compute_start
            if not 0 <= accuracy <= 100:
                raise RuntimeError(f"accuracy {accuracy}")
            return time.perf_counter() - start, compute

        probe_first_s = probe()
        probe_s = [probe() for _ in range(PROBE_REPEATS)]
        hand_first_s = hand()[0]
        hand_runs = [hand() for _ in range(PROBE_REPEATS)]
    return ProbeCost(
        build_s,
        imported_dynamo,
        probe_first_s,
        probe_s,
        hand_first_s,
        [total for total, _ in hand_runs],
        [compute for _, compute in hand_runs],
    )


# ----------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------
def _fmt(values: Sequence[float], scale: float = 1.0, digits: int = 3) -> str:
    return ", ".join(f"{v * scale:.{digits}f}" for v in values)


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3, help="fresh processes of each kind (default 3)")
    parser.add_argument(CHILD_FLAG, action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.validation_child:
        validation_child()
        return
    runs = max(1, args.runs)

    import torch

    torch.set_num_threads(1)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, {os.cpu_count()} CPU(s)"
    )

    print("1. validation of the seed config, in a fresh interpreter (imports and composition not timed) ...")
    validation = measure_validation()
    print(
        f"   first RunnerConfig.from_dict {validation.cold_ms:.1f} ms (cold); "
        f"{WARM_VALIDATIONS} more: median {validation.warm_median_ms:.1f} ms, "
        f"min {min(validation.warm_ms):.1f} ms, max {max(validation.warm_ms):.1f} ms"
    )

    print(f"2. {runs} fresh process(es) of each kind (good, contract mismatch, cross-field error), alternating ...")
    startup = startup_times(runs)

    print(f"3. the probe in this process: Runner(config) on the seed, check() x{1 + PROBE_REPEATS} ...")
    cost = probe_cost()

    good = statistics.median(startup.good)
    mismatch_exit = statistics.median(r.to_exit for r in startup.mismatch)
    mismatch_report = statistics.median(r.to_report for r in startup.mismatch)
    cross_exit = statistics.median(r.to_exit for r in startup.cross_field)
    cross_report = statistics.median(r.to_report for r in startup.cross_field)
    ratio_exit = mismatch_exit / good
    ratio_report = mismatch_report / good
    probe = statistics.median(cost.probe_s)
    hand = statistics.median(cost.hand_s)
    hand_compute = statistics.median(cost.hand_compute_s)

    print()
    print("summary")
    print(
        f"  validation (seed, after imports): cold {validation.cold_ms:.1f} ms, "
        f"warm median {validation.warm_median_ms:.1f} ms -> target < {VALIDATION_TARGET_MS:.0f} ms: "
        f"{_met(validation.cold_ms < VALIDATION_TARGET_MS)} (judged on the cold number)"
    )
    print(f"  good run, launch -> first training iteration s:  {_fmt(startup.good)}")
    print(f"  contract mismatch, launch -> error report s:     {_fmt([r.to_report for r in startup.mismatch])}")
    print(f"  contract mismatch, launch -> exit (status 2) s:  {_fmt([r.to_exit for r in startup.mismatch])}")
    print(f"  cross-field error, launch -> error report s:     {_fmt([r.to_report for r in startup.cross_field])}")
    print(f"  cross-field error, launch -> exit (status 2) s:  {_fmt([r.to_exit for r in startup.cross_field])}")
    print(
        f"  medians of {runs}: good {good:.3f} s; mismatch report {mismatch_report:.3f} s, exit {mismatch_exit:.3f} s; "
        f"cross-field report {cross_report:.3f} s, exit {cross_exit:.3f} s"
    )
    print(
        f"  ratio mismatch/good: {ratio_exit:.2f}x to exit, {ratio_report:.2f}x to the report; "
        f"cross-field/good: {cross_exit / good:.2f}x to exit, {cross_report / good:.2f}x to the report"
    )
    print(
        f"  target <= {STARTUP_TARGET_RATIO:.2f}x: {_met(ratio_exit <= STARTUP_TARGET_RATIO)} "
        f"(judged on the exit, the later of the two; on the report alone: "
        f"{_met(ratio_report <= STARTUP_TARGET_RATIO)})"
    )
    print(
        f"  probe, in process: Runner(config) built in {cost.build_s * 1e3:.1f} ms"
        f"{' (including the import of torch._dynamo by its first optimizer)' if cost.build_imported_dynamo else ''}; "
        f"runner.check() first {cost.probe_first_s * 1e3:.1f} ms, median of {PROBE_REPEATS} {probe * 1e3:.1f} ms "
        f"({_fmt(cost.probe_s, 1e3, 1)} ms)"
    )
    print(
        f"  by hand, same model and loaders (train batch 64: read + forward + backward; val batch 1000: read + "
        f"predict + accuracy): first {cost.hand_first_s * 1e3:.1f} ms, median of {PROBE_REPEATS} {hand * 1e3:.1f} ms "
        f"({_fmt(cost.hand_s, 1e3, 1)} ms), of which compute {hand_compute * 1e3:.1f} ms"
    )
    print(
        f"  probe / hand iteration (medians): {probe / hand:.2f}x, probe minus hand {(probe - hand) * 1e3:+.1f} ms "
        "(the hand's first call comes after the probe's, so only the medians compare)"
    )


if __name__ == "__main__":
    main()
