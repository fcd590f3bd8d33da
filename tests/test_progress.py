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
from typing import Literal, TextIO

import pytest

from tests.helpers import FAST, REPO
from typedrunner.build.hooks import build_progress_bar
from typedrunner.config import LogProcessor

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


def test_bars_only_on_a_terminal_unless_switched(monkeypatch: pytest.MonkeyPatch) -> None:
    """``auto``: a bar when stdout is a terminal (a real pseudo-terminal here), none when it is a pipe;
    ``off`` never; ``on`` always. (A piped command-line run without bars: test_curves.)"""
    leader, follower = pty.openpty()
    read_end, write_end = os.pipe()
    with open(follower, "w", closefd=True) as terminal, open(write_end, "w", closefd=True) as pipe:
        cases: list[tuple[TextIO, Literal["auto", "on", "off"], bool]] = [
            (terminal, "auto", True),
            (pipe, "auto", False),
            (terminal, "off", False),
            (pipe, "on", True),
        ]
        for stdout, mode, wanted in cases:
            monkeypatch.setattr(sys, "stdout", stdout)
            bar = build_progress_bar(LogProcessor(progress=mode), None, None)
            assert (bar is not None) == wanted, (mode, stdout)
    os.close(leader)
    os.close(read_end)
