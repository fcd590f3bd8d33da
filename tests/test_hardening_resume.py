"""Hardening (issue 13): resume trusts nothing it reads from a checkpoint or the run directory.

Checkpoints are crafted with ``torch.save`` of plain dicts and tensors (they load with
``weights_only=True``); the command line runs as a real subprocess where the exit code matters.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.helpers import (
    FAST,
    assert_bit_identical,
    explain,
    read_checkpoint,
    run_cli,
    runner_weights,
)
from typedrunner.config import CheckpointHook, DefaultHooks, LoggerHook, Randomness
from typedrunner.errors import ConfigError, NonFiniteLossError
from typedrunner.hooks import Hook, RunView
from typedrunner.runner import Runner
from typedrunner.testing import toy_config

Crafter = Callable[[dict[str, Any], Path], None]


def craft(path: Path, change: Crafter, out: Path | None = None) -> Path:
    """Load the checkpoint at ``path``, let ``change`` edit it (given the run directory), save it."""
    state = read_checkpoint(path)
    change(state, path.parent)
    torch.save(state, out or path)
    return out or path


def trained(work_dir: Path, epochs: int = 2, **overrides: Any) -> Runner:
    runner = Runner(toy_config(work_dir, max_epochs=epochs, **overrides))
    runner.train()
    return runner


# ----------------------------------------------------------------------------------------------
# Item 3: nothing read from a checkpoint names a path outside the run directory
# ----------------------------------------------------------------------------------------------
def _saved_names(*names: str) -> Crafter:
    def change(state: dict[str, Any], run_dir: Path) -> None:
        state["hooks"]["CheckpointHook"]["saved"] = [
            n.replace("{victim}", str(run_dir.parent / "victim.txt")) for n in names
        ]

    return change


@pytest.mark.parametrize("name", ["{victim}", "../victim.txt", "sub/../../victim.txt", ".."])
def test_a_saved_list_naming_paths_outside_is_refused_and_nothing_is_deleted(tmp_path: Path, name: str) -> None:
    hooks = DefaultHooks(checkpoint=CheckpointHook(max_keep_ckpts=1))
    work_dir = tmp_path / "run"
    trained(work_dir, 2, default_hooks=hooks)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious", encoding="utf-8")
    craft(work_dir / "epoch_2.pth", _saved_names(name, "epoch_2.pth"))
    with pytest.raises(ConfigError) as refused:
        Runner(toy_config(work_dir, max_epochs=3, default_hooks=hooks, resume=True)).train()
    assert "not file names inside the checkpoint directory" in str(refused.value), str(refused.value)
    assert victim.read_text(encoding="utf-8") == "precious"
    assert (work_dir / "epoch_2.pth").is_file()


def test_the_pointer_is_relative_and_a_copied_run_resumes_from_its_own_files(tmp_path: Path) -> None:
    original, copy = tmp_path / "original", tmp_path / "copy"
    trained(original, 2)
    assert (original / "last_checkpoint").read_text(encoding="utf-8").strip() == "epoch_2.pth"
    shutil.copytree(original, copy)
    shutil.copy(original / "epoch_1.pth", original / "epoch_2.pth")  # the original's latest changes
    resumed = Runner(toy_config(copy, max_epochs=3, resume=True))
    assert (resumed.epoch, resumed.iter) == (2, 8)


def test_a_pointer_outside_work_dir_is_ignored(tmp_path: Path) -> None:
    elsewhere, work_dir = tmp_path / "elsewhere", tmp_path / "run"
    trained(elsewhere, 1)
    trained(work_dir, 2)
    (work_dir / "last_checkpoint").write_text(str(elsewhere / "epoch_1.pth"), encoding="utf-8")
    resumed = Runner(toy_config(work_dir, max_epochs=3, resume=True))
    assert resumed.epoch == 2  # its own newest checkpoint, not the file outside


# ----------------------------------------------------------------------------------------------
# Item 4: resume validates what it reads, and refuses before anything is restored
# ----------------------------------------------------------------------------------------------
def _set(*keys: str, value: Any) -> Crafter:
    def change(state: dict[str, Any], run_dir: Path) -> None:
        target = state
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return change


MALFORMED: dict[str, tuple[Crafter, str]] = {
    "epoch_text": (_set("meta", "epoch", value="abc"), "meta.epoch"),
    "epoch_negative": (_set("meta", "epoch", value=-5), "meta.epoch"),
    "epoch_past_the_end": (_set("meta", "epoch", value=10**12), "past the configured end of training"),
    "seed_text": (_set("meta", "seed", value="abc"), "meta.seed"),
    "rng_python": (_set("rng", "python", value="abc"), "RNG state"),
    "rng_torch_size": (_set("rng", "torch", value=torch.zeros(3, dtype=torch.uint8)), "RNG state"),
    "rng_not_a_mapping": (_set("rng", value=[1, 2]), "RNG state"),
    "optimizer_params": (_set("optimizer", "param_groups", value=[{"params": "abc"}]), "optimizer state"),
    "optimizer_buffer": (_set("optimizer", "state", value={0: {"momentum_buffer": "abc"}}), "optimizer state"),
    "optimizer_shape": (_set("optimizer", "state", value={0: {"momentum_buffer": torch.zeros(7)}}), "shape [7]"),
    "hook_best": (_set("hooks", "CheckpointHook", "best", value={"accuracy": "abc"}), "CheckpointHook"),
    "hook_not_a_mapping": (_set("hooks", "CheckpointHook", value=3), "CheckpointHook"),
    "weights_not_tensors": (_set("state_dict", "net.0.weight", value="abc"), "net.0.weight"),
    "schedules": (_set("param_schedulers", value="abc"), "param_schedulers"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_checkpoint_is_refused_before_anything_is_restored(tmp_path: Path, case: str) -> None:
    change, fragment = MALFORMED[case]
    trained(tmp_path, 2)
    craft(tmp_path / "epoch_2.pth", change)
    with pytest.raises(ConfigError) as refused:
        Runner(toy_config(tmp_path, max_epochs=3, resume=True))
    assert refused.value.problems[0].path == "resume", str(refused.value)
    assert fragment in str(refused.value), str(refused.value)


# ----------------------------------------------------------------------------------------------
# The command line: exit 2 and a message, never a traceback; warnings shown; stale reports removed
# ----------------------------------------------------------------------------------------------
CLI_RUN = [*FAST, "train_dataloader.dataset.size=256", "val_dataloader.dataset.size=64", "train_cfg.val_begin=1"]


def cli(run_dir: Path, env: dict[str, str], *extra: str) -> Any:
    return run_cli(["+experiment=mlp", *CLI_RUN, f"hydra.run.dir={run_dir}", *extra], env)


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One epoch of the seed on the command line, seed unset: copied by each test that resumes it."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(Path(__file__).parents[1]), env.get("PYTHONPATH", "")) if p)
    env.pop("HYDRA_FULL_ERROR", None)
    run_dir = tmp_path_factory.mktemp("cli") / "run"
    result = cli(run_dir, env, "train_cfg.max_epochs=1")
    assert result.returncode == 0, explain(result)
    yield run_dir


def copied(cli_run: Path, tmp_path: Path) -> Path:
    run_dir = tmp_path / "run"
    shutil.copytree(cli_run, run_dir)
    return run_dir


CLI_CASES = ["epoch_text", "epoch_past_the_end", "rng_python", "optimizer_buffer"]


@pytest.mark.parametrize("case", [*CLI_CASES, "saved_outside"])
def test_the_command_line_refuses_a_crafted_checkpoint_with_exit_2(
    cli_run: Path, tmp_path: Path, subprocess_env: dict[str, str], case: str
) -> None:
    run_dir = copied(cli_run, tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious", encoding="utf-8")
    change = _saved_names("{victim}", "epoch_1.pth") if case == "saved_outside" else MALFORMED[case][0]
    craft(run_dir / "epoch_1.pth", change)
    result = cli(run_dir, subprocess_env, "train_cfg.max_epochs=2", "resume=true")
    assert result.returncode == 2, explain(result)
    assert "cannot resume" in result.stderr and "Traceback" not in result.stderr, explain(result)
    assert victim.read_text(encoding="utf-8") == "precious"
    assert not (run_dir / "epoch_2.pth").exists()


def test_config_differences_at_resume_are_logged_and_strict_refuses_them(
    cli_run: Path, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    run_dir = copied(cli_run, tmp_path)
    changed = ["train_cfg.max_epochs=2", "resume=true", "optim_wrapper.optimizer.lr=0.01"]
    strict = cli(run_dir, subprocess_env, *changed, "strict=true")
    assert strict.returncode == 2, explain(strict)
    assert "differs from the checkpoint's config: optim_wrapper.optimizer.lr: 0.001 -> 0.01" in strict.stderr
    assert not (run_dir / "epoch_2.pth").exists()
    result = cli(run_dir, subprocess_env, *changed)
    assert result.returncode == 0, explain(result)
    log = (run_dir / "run.log").read_text(encoding="utf-8")
    for text in (log, result.stdout + result.stderr):
        assert "differs from the checkpoint's config: optim_wrapper.optimizer.lr: 0.001 -> 0.01" in text, text
        assert "differs from the checkpoint's config: train_cfg.max_epochs: 1 -> 2" in text, text


def test_a_successful_resume_removes_the_stale_error_report(
    cli_run: Path, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    run_dir = copied(cli_run, tmp_path)
    refused = cli(run_dir, subprocess_env, "train_cfg.max_epochs=2", "resume=true", "model.layers=3")
    assert refused.returncode == 2 and (run_dir / "error_report.txt").is_file(), explain(refused)
    result = cli(run_dir, subprocess_env, "train_cfg.max_epochs=2", "resume=true")
    assert result.returncode == 0, explain(result)
    assert (run_dir / "epoch_2.pth").is_file() and not (run_dir / "error_report.txt").exists()


# ----------------------------------------------------------------------------------------------
# Item 5: resume is exact with randomness.seed unset
# ----------------------------------------------------------------------------------------------
def test_resume_is_bit_identical_with_the_seed_unset(tmp_path: Path) -> None:
    unseeded = Randomness(seed=None)
    straight = trained(tmp_path / "straight", 3, randomness=unseeded)
    saved_seed = read_checkpoint(tmp_path / "straight" / "epoch_1.pth")["meta"]["seed"]
    resumed = Runner(
        toy_config(
            tmp_path / "resumed",
            3,
            randomness=unseeded,
            load_from=str(tmp_path / "straight" / "epoch_1.pth"),
            resume=True,
        )
    )
    assert resumed.seed == saved_seed
    resumed.train()
    assert_bit_identical(runner_weights(resumed), runner_weights(straight))


# ----------------------------------------------------------------------------------------------
# Items 13 and 14: files honour the umask; the NaN message names the iterations after a resume
# ----------------------------------------------------------------------------------------------
def test_checkpoints_and_records_honour_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        trained(tmp_path, 1)
    finally:
        os.umask(previous)
    for name in ("epoch_1.pth", "last_checkpoint", "config.json", "summary.json", "run.log"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name


class PoisonBatch(Hook):
    """Puts a NaN into the batch of iteration ``at`` (0-based), as bad data would."""

    def __init__(self, at: int) -> None:
        self.at = at

    def before_train_iter(self, runner: RunView, batch_idx: int, data_batch: Any = None) -> None:
        if runner.iter == self.at:
            data_batch[0][0, 0] = float("nan")


def test_after_a_resume_the_nan_message_names_the_iterations_since_the_resume(tmp_path: Path) -> None:
    hooks = DefaultHooks(logger=LoggerHook(interval=5))
    trained(tmp_path, 1, default_hooks=hooks)
    resumed = Runner(toy_config(tmp_path, max_epochs=4, default_hooks=hooks, resume=True))
    resumed.register_hook(PoisonBatch(at=5))
    with pytest.raises(NonFiniteLossError) as nan:
        resumed.train()
    # the window since the last check (iteration 5, the first after the resume) up to the epoch's end
    assert "between iterations 6 and 8 " in str(nan.value), str(nan.value)
