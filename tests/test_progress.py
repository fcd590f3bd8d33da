"""Progress bars: rendered on a terminal (a pseudo-terminal here), absent when stdout is piped, and
switchable with ``log_processor.progress``."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

from tests.helpers import FAST, REPO, explain, run_cli

QUICK = [*FAST, "train_dataloader.dataset.size=320", "train_cfg.max_epochs=2", "train_cfg.val_begin=1"]


def run_on_a_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """``python -m typedrunner ARGS`` with stdout and stderr on a pseudo-terminal; what it showed."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))  # a 160-column terminal
    process = subprocess.Popen(
        [sys.executable, "-m", "typedrunner", *args], cwd=REPO, env=env, stdout=follower, stderr=follower
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    return process.wait(timeout=120), b"".join(chunks).decode("utf-8", "replace")


def test_bar_renders_on_a_terminal_with_loss_lr_speed_and_eta(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    code, shown = run_on_a_terminal(
        ["+experiment=mlp", *QUICK, "default_hooks.logger.interval=1", f"hydra.run.dir={tmp_path / 'run'}"],
        subprocess_env,
    )
    assert code == 0, shown[-3000:]
    bars = [part for part in shown.replace("\n", "\r").split("\r") if "Epoch(train) [2]:" in part and "it/s" in part]
    assert bars, shown[-3000:]
    assert any("/5 [" in bar and "loss=" in bar and "lr=" in bar for bar in bars), bars
    assert any("<" in bar for bar in bars)  # tqdm's elapsed<remaining
    assert "Epoch(val) [1]:" in shown
    assert "Epoch(train) [2][5/5]  lr: " in shown  # the log lines still print, above the bar


def test_no_bar_when_piped_or_switched_off(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    piped = run_cli(["+experiment=mlp", *QUICK, f"hydra.run.dir={tmp_path / 'piped'}"], subprocess_env)
    assert piped.returncode == 0, explain(piped)
    assert "it/s" not in piped.stdout + piped.stderr and "%|" not in piped.stdout + piped.stderr
    code, shown = run_on_a_terminal(
        ["+experiment=mlp", *QUICK, "+log_processor.progress=off", f"hydra.run.dir={tmp_path / 'off'}"], subprocess_env
    )
    assert code == 0, shown[-3000:]
    assert "it/s" not in shown and "Epoch(val) [2]  accuracy: " in shown
