"""The console line as people read it: MMEngine's order (epoch and iteration, lr, eta as h:mm:ss, time,
data_time, memory on CUDA, then the losses), a line per validation with every metric; ``scalars.jsonl``
keeps the raw values."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typedrunner.config import LoggerHook
from typedrunner.config.hooks import DefaultHooks
from typedrunner.parts.logging import console_line
from typedrunner.runner import Runner
from typedrunner.testing import toy_config

TRAIN_LINE = re.compile(
    r"Epoch\(train\) \[(\d+)\]\[(\d+)/4\]  lr: \d\.\d{3}e[-+]\d\d  eta: \d+:\d\d:\d\d  "
    r"time: [\d.e-]+  data_time: [\d.e-]+  loss: [\d.e-]+$"
)


def test_a_run_prints_mmengine_ordered_lines_and_one_line_per_validation(tmp_path: Path) -> None:
    cfg = toy_config(tmp_path, max_epochs=2, default_hooks=DefaultHooks(logger=LoggerHook(interval=2)))
    Runner(cfg).train()
    lines = (tmp_path / "run.log").read_text(encoding="utf-8").splitlines()
    train = [m for m in (TRAIN_LINE.search(line) for line in lines) if m]
    assert [(int(m[1]), int(m[2])) for m in train] == [(1, 2), (1, 4), (2, 2), (2, 4)]
    records = [json.loads(x) for x in (tmp_path / "scalars.jsonl").read_text().splitlines()]
    val_records = [r for r in records if r["mode"] == "val"]
    val_lines = [line for line in lines if "Epoch(val)" in line]
    assert len(val_lines) == len(val_records) == 2
    for line, record in zip(val_lines, val_records, strict=True):
        assert line.endswith(f"Epoch(val) [{record['epoch']}]  accuracy: {record['accuracy']:.4g}")
    assert all("eta_s" in r and isinstance(r["eta_s"], float) for r in records if r["mode"] == "train")


def test_console_line_formats_eta_memory_and_learning_rates() -> None:
    values = {"lr": 0.001, "loss": 0.64444, "time": 0.02575, "data_time": 0.01885, "eta_s": 3725.4, "memory": 1234.0}
    line = console_line("train", 1, 10, 157, values)
    assert line == (
        "Epoch(train) [1][10/157]  lr: 1.000e-03  eta: 1:02:05  time: 0.02575  data_time: 0.01885  memory: 1234"
        "  loss: 0.6444"
    )
    two = console_line("train", 3, 1, 2, {"loss_cls": 1.0, "lr_gen": 0.1, "lr_disc": 0.2, "loss_box": 2.0}, 3)
    assert two == "Epoch(train) [3][1/2]  lr_gen: 1.00e-01  lr_disc: 2.00e-01  loss_cls: 1  loss_box: 2"
    assert console_line("test", 2, None, None, {"accuracy": 93.456, "f1": 0.5}) == (
        "Epoch(test) [2]  accuracy: 93.46  f1: 0.5"
    )
