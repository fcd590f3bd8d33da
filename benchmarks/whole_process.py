"""Whole process and peak memory: the seed run as a user starts it, against a hand-written script.

``python -m typedrunner +experiment=mlp`` (10 epochs, ``num_workers=0``, everything it writes: logs,
checkpoints, ``summary.json``, ``curves.png``) and :data:`HAND_SCRIPT` (the same model, data sizes,
Adam, MultiStepLR, validation from epoch 2, a checkpoint each epoch and the loss read every 10
iterations, written without any framework) each run as a fresh process, alternating. Timed from launch
to exit; the peak resident memory is each process's own (``os.wait4``'s ``ru_maxrss``). Used by
``overhead.py``; run alone::

    OMP_NUM_THREADS=1 python benchmarks/whole_process.py [RUNS]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

HAND_SCRIPT = """
import math, sys, time
from pathlib import Path
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

def rings(seed, size):
    torch.manual_seed(seed)
    labels = torch.randint(0, 2, (size,))
    r = 3 * (labels + 1) + torch.randn(size)
    theta = torch.rand(size) * 2 * math.pi
    return TensorDataset(torch.vstack([r * torch.cos(theta), r * torch.sin(theta)]).T, labels)

out = Path(sys.argv[1])
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2))
train_loader = DataLoader(rings(0, 10000), batch_size=64, shuffle=True, num_workers=0)
val_loader = DataLoader(rings(3407, 1000), batch_size=1000, num_workers=0)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[4, 8], gamma=0.1)
for epoch in range(10):
    window = []
    for i, (data, labels) in enumerate(train_loader):
        loss = F.cross_entropy(model(data), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        window.append(loss.detach())
        if (i + 1) % 10 == 0:
            print(f"epoch {epoch + 1} iter {i + 1} loss {torch.stack(window).mean().item():.4f}")
            window.clear()
    scheduler.step()
    torch.save({"state_dict": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "epoch": epoch + 1}, out / f"epoch_{epoch + 1}.pth")
    if epoch + 1 >= 2:
        model.eval()
        with torch.no_grad():
            correct = sum(int((model(d).argmax(1) == y).sum()) for d, y in val_loader)
        model.train()
        print(f"epoch {epoch + 1} accuracy {100 * correct / 1000:.1f}")
"""


@dataclass
class Process:
    seconds: float
    peak_mib: float


def run(command: list[str], log: Path) -> Process:
    """Launch ``command`` fresh; its wall time from launch to exit and its own peak RSS."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with log.open("w") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.stderr.write(log.read_text()[-3000:])
        raise RuntimeError(f"{command[:4]} exited {proc.returncode}")
    return Process(seconds, usage.ru_maxrss / 1024)  # ru_maxrss is in KiB on Linux


def measure(runs: int) -> tuple[list[Process], list[Process]]:
    """``runs`` fresh processes of each kind, alternating (the order swaps each run)."""
    typed: list[Process] = []
    hand: list[Process] = []
    with tempfile.TemporaryDirectory(prefix="whole_process_") as tmp:
        for i in range(runs):
            run_dir, hand_dir = Path(tmp) / f"run{i}", Path(tmp) / f"hand{i}"
            hand_dir.mkdir()
            typed_cmd = [
                sys.executable,
                "-m",
                "typedrunner",
                "+experiment=mlp",
                "train_dataloader.num_workers=0",
                "val_dataloader.num_workers=0",
                f"hydra.run.dir={run_dir}",
            ]
            hand_cmd = [sys.executable, "-c", HAND_SCRIPT, str(hand_dir)]
            for which in ("typed", "hand") if i % 2 == 0 else ("hand", "typed"):
                if which == "typed":
                    typed.append(run(typed_cmd, Path(tmp) / f"typed{i}.log"))
                else:
                    hand.append(run(hand_cmd, Path(tmp) / f"hand{i}.log"))
    return typed, hand


def report(typed: list[Process], hand: list[Process]) -> tuple[str, str]:
    """The whole-process line and the peak-memory line."""
    t, h = statistics.median(p.seconds for p in typed), statistics.median(p.seconds for p in hand)
    tm, hm = max(p.peak_mib for p in typed), max(p.peak_mib for p in hand)
    return (
        f"whole process, launch to exit (median of {len(typed)}): typedrunner {t:.2f} s, hand-written "
        f"{h:.2f} s, ratio {t / h:.2f}x (target <= 1.15x)",
        f"peak RSS (max of {len(typed)}): typedrunner {tm:.0f} MiB, hand-written {hm:.0f} MiB, "
        f"difference {tm - hm:+.0f} MiB (target <= +30 MiB)",
    )


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    typed, hand = measure(runs)
    print("typedrunner s: " + ", ".join(f"{p.seconds:.2f}" for p in typed))
    print("hand-written s: " + ", ".join(f"{p.seconds:.2f}" for p in hand))
    for line in report(typed, hand):
        print(line)


if __name__ == "__main__":
    main()
