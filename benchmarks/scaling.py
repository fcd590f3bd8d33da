"""Samples per second of the seed experiment on 1 and on 2 ranks (CPU, gloo), and their ratio.

Run from the repo root:  OMP_NUM_THREADS=1 python benchmarks/scaling.py [--size 4096] [--epochs 2]

1 rank is the plain command line (``launcher=none``); 2 ranks are ``torchrun --standalone
--nproc-per-node=2 ... launcher=pytorch`` with half the batch per rank (the same total batch, so the
same number of optimizer steps). The time is the training wall time the run writes into
``summary.json`` (start-up, validation before training and process launch excluded). Informational:
on a 2-core machine shared with other work the ratio says little about a GPU node.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def samples_per_second(ranks: int, size: int, epochs: int, batch: int, run_dir: Path) -> float:
    """Train the seed for ``epochs`` on ``size`` points with a total batch of ``batch``; samples/s."""
    overrides = [
        "+experiment=mlp",
        "~param_scheduler",
        "train_dataloader.num_workers=0",
        "val_dataloader.num_workers=0",
        f"train_dataloader.dataset.size={size}",
        "val_dataloader.dataset.size=200",
        f"train_dataloader.batch_size={batch // ranks}",
        f"train_cfg.max_epochs={epochs}",
        f"train_cfg.val_begin={epochs}",
        "default_hooks.checkpoint=null",
        f"hydra.run.dir={run_dir}",
    ]
    if ranks == 1:
        command = [sys.executable, "-m", "typedrunner", *overrides]
    else:
        torchrun = str(Path(sys.executable).parent / "torchrun")
        command = [torchrun, "--standalone", f"--nproc-per-node={ranks}", "-m", "typedrunner", *overrides]
        command.append("launcher=pytorch")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    return epochs * size / float(summary["wall_time_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=4096, help="training points")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64, help="total batch (split over the ranks)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        one = samples_per_second(1, args.size, args.epochs, args.batch, Path(tmp) / "one")
        two = samples_per_second(2, args.size, args.epochs, args.batch, Path(tmp) / "two")
    print(f"1 rank : {one:10.0f} samples/s")
    print(f"2 ranks: {two:10.0f} samples/s (torchrun, gloo, CPU)")
    print(f"ratio  : {two / one:10.2f}x")


if __name__ == "__main__":
    main()
