"""Reliability of the work directory: a work_dir that cannot be created is refused before training, and a
checkpoint write that fails part-way (cut short by ``RLIMIT_FSIZE``) keeps the previous checkpoint and
is reported as a checkpoint error.
"""

from __future__ import annotations

import io
import os
import resource
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from tests.helpers import (
    PLUGINS,
    explain,
    mlp_args,
    plugin_cli_env,
    read_checkpoint,
    resolved_pointer,
    run_cli,
    write_plugins,
)
from typedrunner import ContractError
from typedrunner.parts.checkpoint import CheckpointError, save_checkpoint
from typedrunner.runner import Runner
from typedrunner.testing import toy_config


# ----------------------------------------------------------------------------------------------
# The work directory: cannot be created; a checkpoint write that fails part-way
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
    result = run_cli(mlp_args(run_dir, limit, dataset="MyDataset"), plugin_cli_env(write_plugins(tmp_path)))
    assert result.returncode == 1, explain(result)
    # the previous checkpoint is intact, the pointer still names it, the partial file is gone
    assert sorted(p.name for p in run_dir.glob("*.pth")) == ["epoch_1.pth"]
    assert read_checkpoint(run_dir / "epoch_1.pth")["meta"]["epoch"] == 1
    assert resolved_pointer(run_dir) == run_dir / "epoch_1.pth"
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
        intact = read_checkpoint(directory / "ckpt.pth")["meta"]["iter"] == 1
        yield limit, raised, intact, sorted(p.name for p in directory.iterdir() if p.name != "ckpt.pth")


def test_checkpoint_write_failing_at_any_byte_keeps_the_old_file(tmp_path: Path) -> None:
    for limit, raised, intact, leftovers in _cut_writes(tmp_path):
        assert raised in ("CheckpointError", "RuntimeError"), f"capped at {limit} bytes, the write: {raised}"
        assert intact, f"capped at {limit} bytes, the previous checkpoint was damaged"
        assert leftovers == [], f"capped at {limit} bytes, left {leftovers}"


def test_checkpoint_write_failing_at_any_byte_is_a_checkpoint_error(tmp_path: Path) -> None:
    outcomes = {limit: raised for limit, raised, _, _ in _cut_writes(tmp_path)}
    assert set(outcomes.values()) == {"CheckpointError"}, outcomes
