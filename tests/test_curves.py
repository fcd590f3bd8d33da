"""Curves: ``curves.png`` at the end of a command-line run (matplotlib imported only then), a line
saying so when matplotlib is missing, and ``python -m typedrunner.plot`` overlaying runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import FAST, REPO, explain, run_cli
from typedrunner.app.curves import MISSING, read_curves
from typedrunner.config import DefaultHooks, LoggerHook
from typedrunner.runner import Runner
from typedrunner.testing import toy_config

QUICK = [*FAST, "train_dataloader.dataset.size=320", "train_cfg.max_epochs=2", "train_cfg.val_begin=1"]
PNG = b"\x89PNG\r\n\x1a\n"


def test_a_run_ends_with_curves_png_and_never_imports_matplotlib_while_training(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    run_dir = tmp_path / "run"
    args = ["+experiment=mlp", *QUICK, "default_hooks.logger.interval=5", f"hydra.run.dir={run_dir}"]
    result = run_cli([*args, "+custom_hooks=[{type: tests.helpers.NoMatplotlibWhileTraining}]"], subprocess_env)
    assert result.returncode == 0, explain(result)
    assert result.stdout.count(f"curves: {run_dir / 'curves.png'}") == 1
    assert (run_dir / "curves.png").read_bytes()[:8] == PNG
    curves = read_curves(run_dir)  # what was drawn: every loss, lr and metric of scalars.jsonl
    records = [json.loads(x) for x in (run_dir / "scalars.jsonl").read_text().splitlines()]
    assert curves["loss"] == {"train/loss": [(r["step"], r["loss"]) for r in records if r["mode"] == "train"]}
    assert curves["lr"] == {"train/lr": [(r["step"], r["lr"]) for r in records if r["mode"] == "train"]}
    assert curves["metrics"] == {"val/accuracy": [(r["step"], r["accuracy"]) for r in records if r["mode"] == "val"]}


def test_without_matplotlib_the_run_says_once_that_no_plot_was_drawn(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    code = "import sys; sys.modules['matplotlib'] = None; from typedrunner.app.cli import main; main()"
    env = dict(
        os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    )
    result = subprocess.run(
        [sys.executable, "-c", code, "+experiment=mlp", *QUICK, f"hydra.run.dir={run_dir}"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, explain(result)
    assert (result.stdout + result.stderr).count(MISSING) == 1
    assert not (run_dir / "curves.png").exists() and (run_dir / "summary.json").is_file()


def test_plot_command_overlays_runs(tmp_path: Path) -> None:
    hooks = DefaultHooks(logger=LoggerHook(interval=2))
    for name, lr_seed in (("a", 0), ("b", 1)):
        Runner(toy_config(tmp_path / name, max_epochs=2, seed=lr_seed, default_hooks=hooks)).train()
    env = dict(
        os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    )

    def plot(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "typedrunner.plot", *args]
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)

    both, one = plot("a", "b", "-o", "both.png"), plot("a", "-o", "one.png")
    assert both.returncode == 0 and one.returncode == 0, explain(both) + explain(one)
    assert both.stdout.strip() == "curves: both.png"
    assert (tmp_path / "both.png").read_bytes()[:8] == PNG
    assert (tmp_path / "both.png").read_bytes() != (tmp_path / "one.png").read_bytes()  # b's curves are drawn too
    missing = plot("a", "nowhere")
    assert missing.returncode == 2 and "no scalars.jsonl in: nowhere" in missing.stderr
