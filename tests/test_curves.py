"""Curves: ``curves.png`` at the end of a command-line run (matplotlib imported only then), a line
saying so when matplotlib is missing, and ``python -m typedrunner.plot`` overlaying runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import FAST, REPO, explain, run_cli
from typedrunner.app.curves import MISSING, curves_after_run, main, read_curves
from typedrunner.config import DefaultHooks, LoggerHook
from typedrunner.runner import Runner
from typedrunner.testing import toy_config

QUICK = [*FAST, "train_dataloader.dataset.size=320", "train_cfg.max_epochs=2", "train_cfg.val_begin=1"]
PNG = b"\x89PNG\r\n\x1a\n"


def test_a_run_ends_with_curves_png_and_never_imports_matplotlib_while_training(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    """Also, as this run is piped with conf's ``hydra/job_logging: none``: typedrunner's own console
    prints each line once (not Hydra's leftover root handler too), and no progress bar is drawn."""
    run_dir = tmp_path / "run"
    args = ["+experiment=mlp", *QUICK, "default_hooks.logger.interval=5", f"hydra.run.dir={run_dir}"]
    result = run_cli([*args, "+custom_hooks=[{type: tests.helpers.NoMatplotlibWhileTraining}]"], subprocess_env)
    assert result.returncode == 0, explain(result)
    assert result.stdout.count("Epoch(train) [1][5/5]") == 1, result.stdout
    assert "[info     ] Epoch(train) [1][5/5]  lr: " in result.stdout and "[HYDRA] Epoch" not in result.stdout
    assert not (run_dir / "cli.log").exists()
    assert "it/s" not in result.stdout + result.stderr and "%|" not in result.stdout + result.stderr
    assert result.stdout.count(f"curves: {run_dir / 'curves.png'}") == 1
    assert (run_dir / "curves.png").read_bytes()[:8] == PNG
    curves = read_curves(run_dir)  # what was drawn: every loss, lr and metric of scalars.jsonl
    records = [json.loads(x) for x in (run_dir / "scalars.jsonl").read_text().splitlines()]
    assert curves["loss"] == {"train/loss": [(r["step"], r["loss"]) for r in records if r["mode"] == "train"]}
    assert curves["lr"] == {"train/lr": [(r["step"], r["lr"]) for r in records if r["mode"] == "train"]}
    assert curves["metrics"] == {"val/accuracy": [(r["step"], r["accuracy"]) for r in records if r["mode"] == "val"]}


def test_without_matplotlib_the_run_says_once_that_no_plot_was_drawn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``curves_after_run`` is what the command line prints when a run ends; with matplotlib hidden
    (``sys.modules["matplotlib"] = None``: not importable, as if not installed) it draws nothing and
    returns the one line to say so."""
    Runner(toy_config(tmp_path, max_epochs=1)).train()
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert curves_after_run(tmp_path) == MISSING
    assert "pip install 'typedrunner[sweeps]'" in MISSING
    assert not (tmp_path / "curves.png").exists() and (tmp_path / "summary.json").is_file()


def test_plot_command_overlays_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hooks = DefaultHooks(logger=LoggerHook(interval=2))
    for name, lr_seed in (("a", 0), ("b", 1)):
        Runner(toy_config(tmp_path / name, max_epochs=2, seed=lr_seed, default_hooks=hooks)).train()
    env = dict(
        os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    )

    def plot(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "typedrunner.plot", *args]
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)

    both = plot("a", "b", "-o", "both.png")
    assert both.returncode == 0, explain(both)
    assert both.stdout.strip() == "curves: both.png"
    assert (tmp_path / "both.png").read_bytes()[:8] == PNG
    assert main([str(tmp_path / "a"), "-o", str(tmp_path / "one.png")]) == 0
    assert (tmp_path / "both.png").read_bytes() != (tmp_path / "one.png").read_bytes()  # b's curves are drawn too
    assert main([str(tmp_path / "a"), str(tmp_path / "nowhere")]) == 2
    assert f"no scalars.jsonl in: {tmp_path / 'nowhere'}" in capsys.readouterr().err
