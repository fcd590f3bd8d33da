"""Fail fast on the command line: exit 2 with a report that says where each bad value came from (config
path and override), nothing written but the report; ``--check`` prints batches, metrics and warnings.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers import REPO, explain, run_cli

LOSS = "mode='loss'"


# ----------------------------------------------------------------------------------------------
# The command line: exit 2, a report naming paths and sources, nothing written but the report
# ----------------------------------------------------------------------------------------------
CLI_FAST = ["train_dataloader.num_workers=0", "val_dataloader.num_workers=0"]


def cli_env(*extra_paths: Path) -> dict[str, str]:
    """conftest's ``subprocess_env`` (one thread, the repo importable, no HYDRA_FULL_ERROR), plus
    ``extra_paths``; a function, so that the module-scoped fixtures below can use it too."""
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = "1"
    paths = [str(p) for p in extra_paths] + [str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.pop("HYDRA_FULL_ERROR", None)
    return env


def line_of(text: str, path: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip().startswith(f"{path}:")]
    assert lines, f"no line for {path} in:\n{text}"
    return lines[0]


def assert_only_error_report(run_dir: Path) -> None:
    assert sorted(p.name for p in run_dir.iterdir()) == [".hydra", "error_report.txt"]


class CliRun:
    def __init__(self, run_dir: Path, result: subprocess.CompletedProcess[str]) -> None:
        self.run_dir = run_dir
        self.result = result


@pytest.fixture(scope="module")
def cross_field_run(tmp_path_factory: pytest.TempPathFactory) -> CliRun:
    """Two cross-field mistakes made on the command line of the seed experiment."""
    run_dir = tmp_path_factory.mktemp("cli") / "run"
    args = [
        "+experiment=mlp",
        "param_scheduler.milestones=[40]",
        "default_hooks.checkpoint.interval=20",
        "+default_hooks.checkpoint.save_last=false",
        *CLI_FAST,
        f"hydra.run.dir={run_dir}",
    ]
    return CliRun(run_dir, run_cli(args, cli_env()))


def test_cli_cross_field_errors_exit_2(cross_field_run: CliRun) -> None:
    result, run_dir = cross_field_run.result, cross_field_run.run_dir
    assert result.returncode == 2, explain(result)
    assert "Traceback" not in result.stderr
    milestones = line_of(result.stderr, "param_scheduler[0].milestones")
    assert "[40]" in milestones and "max_epochs=10" in milestones
    interval = line_of(result.stderr, "default_hooks.checkpoint.interval")
    assert "[from command-line override 'default_hooks.checkpoint.interval=20']" in interval
    assert_only_error_report(run_dir)
    report = (run_dir / "error_report.txt").read_text()
    assert "param_scheduler[0].milestones" in report
    assert "default_hooks.checkpoint.interval" in report


def test_cli_names_the_override_behind_a_scheduler_error(cross_field_run: CliRun) -> None:
    milestones = line_of(cross_field_run.result.stderr, "param_scheduler[0].milestones")
    assert "[from command-line override 'param_scheduler.milestones=[40]']" in milestones


BROKEN_MODULE = '''
"""A user model whose first layer expects 3 features; the seed's rings have 2."""
from torch import nn

from examples.seed_mlp import MyAwesomeModel


class BrokenModel(MyAwesomeModel):
    def __init__(self, layers: int = 4, activation: str = "relu") -> None:
        super().__init__(layers=layers, activation=activation)
        self.layer0 = nn.Linear(3, 64)
'''


def test_cli_probe_error_exits_2(tmp_path: Path) -> None:
    (tmp_path / "brokenmod.py").write_text(BROKEN_MODULE)
    run_dir = tmp_path / "run"
    args = [
        "+experiment=mlp",
        "custom_imports=[examples.seed_mlp,brokenmod]",
        "model.type=brokenmod.BrokenModel",
        *CLI_FAST,
        f"hydra.run.dir={run_dir}",
    ]
    result = run_cli(args, cli_env(tmp_path))
    assert result.returncode == 2, explain(result)
    assert "Traceback" not in result.stderr
    model = line_of(result.stderr, "model")
    for fragment in (LOSS, "BrokenModel.forward", "Tensor[64, 2] float32", "first layer"):
        assert fragment in model, model
    assert "[from command-line override 'model.type=brokenmod.BrokenModel']" in model
    assert "[probe: train]" in result.stderr and "[probe: val]" in result.stderr
    assert_only_error_report(run_dir)
    assert "BrokenModel.forward" in (run_dir / "error_report.txt").read_text()


def test_cli_check_on_the_seed_prints_batches_and_metrics(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = run_cli(["+experiment=mlp", "check=true", *CLI_FAST, f"hydra.run.dir={run_dir}"], cli_env())
    assert result.returncode == 0, explain(result)
    assert "train batch: list(Tensor[64, 2] float32, Tensor[64] int64)" in result.stdout
    assert "val batch: list(Tensor[1000, 2] float32, Tensor[1000] int64)" in result.stdout
    assert "val metrics: accuracy" in result.stdout
    assert "no problems found" in result.stdout
    assert list(tmp_path.rglob("*.pth")) == []
    assert list(tmp_path.rglob("scalars.jsonl")) == []
    assert not (run_dir / "error_report.txt").exists()


ITERATION_STEPPED = ["+experiment=mlp", "param_scheduler.by_epoch=false", "check=true", *CLI_FAST]
"""The seed's milestones [4, 8] read as iterations: all inside the first of 157-iteration epochs."""


@pytest.fixture(scope="module")
def warning_check_run(tmp_path_factory: pytest.TempPathFactory) -> CliRun:
    run_dir = tmp_path_factory.mktemp("cli") / "run"
    return CliRun(run_dir, run_cli([*ITERATION_STEPPED, f"hydra.run.dir={run_dir}"], cli_env()))


def test_cli_check_with_a_warning_exits_0(warning_check_run: CliRun) -> None:
    result, run_dir = warning_check_run.result, warning_check_run.run_dir
    assert result.returncode == 0, explain(result)
    assert "val metrics: accuracy" in result.stdout
    assert "no problems found" not in result.stdout
    assert list(run_dir.rglob("*.pth")) == []
    assert list(run_dir.rglob("scalars.jsonl")) == []


def test_cli_check_prints_its_warnings(warning_check_run: CliRun) -> None:
    output = warning_check_run.result.stdout + warning_check_run.result.stderr
    assert "param_scheduler[0].milestones" in output
    assert "first epoch" in output


def test_cli_strict_makes_the_warning_fatal(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = run_cli([*ITERATION_STEPPED, "strict=true", f"hydra.run.dir={run_dir}"], cli_env())
    assert result.returncode == 2, explain(result)
    assert "Traceback" not in result.stderr
    assert "1 warning" in result.stderr
    line = line_of(result.stderr, "param_scheduler[0].milestones")
    assert "first epoch (157 iterations)" in line and "by_epoch: true" in line
    assert_only_error_report(run_dir)
