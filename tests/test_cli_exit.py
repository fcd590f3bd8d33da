"""How a finished command line ends: without the interpreter's teardown (about 1 s of CPU once torch
is imported), but after everything a normal exit completes: threads that are not daemons, ``atexit``
handlers, and files still open for writing."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import FAST, explain, run_cli


def test_a_finished_run_ends_after_its_threads_atexit_handlers_and_open_files(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    run_dir = tmp_path / "run"
    hook = "+custom_hooks=[{type: tests.helpers.LeavesWorkForExit}]"
    args = ["+experiment=mlp", *FAST, "train_dataloader.dataset.size=128", "train_cfg.max_epochs=1"]
    result = run_cli([*args, "train_cfg.val_begin=1", hook, f"hydra.run.dir={run_dir}"], subprocess_env)
    assert result.returncode == 0, explain(result)
    assert (run_dir / "unclosed.txt").read_text() == "written, never closed\n"
    assert (run_dir / "atexit.txt").read_text() == "atexit ran\n"
    assert (run_dir / "thread.txt").read_text() == "thread finished\n"
    assert "done final_accuracy=" in (run_dir / "run.log").read_text()
