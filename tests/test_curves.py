"""Curves: ``curves.png`` at the end of a command-line run (matplotlib imported only then), a line
saying so when matplotlib is missing, and ``python -m typedrunner.plot`` overlaying runs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import FAST, PLUGINS, REPO, explain, mlp_args, plugin_cli_env, run_cli, write_plugins
from typedrunner.app.curves import MISSING, CurvesDrawer, curves_after_run, main, read_curves
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


def _drawers_marked(mark: str) -> list[int]:
    """The live processes whose environment holds ``TEST_DRAWER_MARK=mark`` and that run the drawer."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
            cmdline = (proc / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue  # a process that ended meanwhile, or not a process
        if f"TEST_DRAWER_MARK={mark}".encode() in environ and b"__typedrunner_curves__" in cmdline:
            found.append(int(proc.name))
    return found


def test_the_training_process_never_imports_matplotlib_and_a_failed_run_leaves_no_drawer(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    """The drawer imports matplotlib in its own process (``-X importtime`` lists every module the run's
    process imports: no matplotlib); a run that fails draws nothing and ends its drawer with it."""
    env = dict(subprocess_env, TEST_DRAWER_MARK=tmp_path.name)
    run_dir = tmp_path / "run"
    command = [sys.executable, "-X", "importtime", "-m", "typedrunner", "+experiment=mlp", *QUICK]
    ok = subprocess.run(
        [*command, f"hydra.run.dir={run_dir}"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert ok.returncode == 0, explain(ok)
    assert re.search(r"^import time: .*\| +torch$", ok.stderr, re.MULTILINE)  # the import log is there ...
    assert not re.search(r"\| +matplotlib(\.|$)", ok.stderr, re.MULTILINE)  # ... and matplotlib is not in it
    assert ok.stdout.count(f"curves: {run_dir / 'curves.png'}") == 1
    assert (run_dir / "curves.png").read_bytes()[:8] == PNG
    assert _drawers_marked(tmp_path.name) == []

    failed_dir = tmp_path / "failed"  # a NaN in the batch of iteration 15: the run fails at iteration 20
    nan = mlp_args(failed_dir, f"+train_dataloader.dataset.nan_index={64 * 14 + 5}", dataset=f"{PLUGINS}.NanRings")
    plugins_env = dict(plugin_cli_env(write_plugins(tmp_path)), TEST_DRAWER_MARK=tmp_path.name)
    failed = run_cli([*nan, "train_dataloader.sampler.shuffle=false"], plugins_env)
    assert failed.returncode == 1, explain(failed)
    assert "NaN or infinite" in failed.stderr, explain(failed)
    assert "curves" not in failed.stdout and not (failed_dir / "curves.png").exists()
    assert (failed_dir / "scalars.jsonl").is_file()  # the run got as far as logging: a drawer was started
    assert _drawers_marked(tmp_path.name) == []


def test_a_drawer_that_is_gone_leaves_the_drawing_to_the_run(tmp_path: Path) -> None:
    """A drawer draws the run's curves once and exits; one that died before the run ended (killed
    here) answers nothing, and ``curves_after_run`` draws in its own process instead."""
    Runner(toy_config(tmp_path, max_epochs=2, default_hooks=DefaultHooks(logger=LoggerHook(interval=2)))).train()
    drawer = CurvesDrawer.start()
    assert drawer is not None
    assert drawer.draw(tmp_path) == f"curves: {tmp_path / 'curves.png'}"
    drawn = (tmp_path / "curves.png").read_bytes()
    assert drawn[:8] == PNG
    (tmp_path / "curves.png").unlink()

    gone = CurvesDrawer.start()
    assert gone is not None
    gone.close()
    assert gone.draw(tmp_path) is None and not (tmp_path / "curves.png").exists()
    assert curves_after_run(tmp_path, gone) == f"curves: {tmp_path / 'curves.png'}"
    assert (tmp_path / "curves.png").read_bytes() == drawn  # the same picture, drawn here


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
