"""typedrunner's overhead on the seed workload, against a hand-written PyTorch loop doing identical work.

Run from the repository root (the directory holding ``conf/``)::

    OMP_NUM_THREADS=1 python benchmarks/overhead.py [--rounds N] [--startup-runs N] [--seed S]

Two measurements:

1. **Training-loop time.** The seed workload (MMEngine's Runner tutorial: MLP on two rings, 10 epochs
   of 157 iterations, Adam, MultiStepLR per epoch, validation every epoch from epoch 2 with the
   Accuracy metric, a checkpoint every epoch, the loss read to the host every 10 iterations), with
   ``num_workers=0``, run by ``Runner.train()`` and by a hand-written loop doing the same work, in this
   process, alternating for ``--rounds`` rounds (the order swaps each round). Construction is not
   timed: only ``runner.train()`` and the same span of the hand loop. Both use the same seed, so they
   train the same model on the same batches: their final accuracies and parameter sums must agree,
   and the script prints whether they do.
   The Runner's console log goes to an in-memory buffer (its ``run.log`` / ``scalars.jsonl`` files
   are still written into its work_dir, as in a real run): that logging is part of its overhead.
2. **Process start -> first training iteration.** A fresh ``python -m typedrunner +experiment=mlp``
   (one epoch, ``val_begin=1``, ``num_workers=0``) with one extra ``custom_hooks`` entry,
   :class:`FirstIterHook` (imported by the child as ``benchmarks.overhead``), that writes the wall-clock time of its first ``before_train_iter`` into a file; the parent subtracts the
   time it launched the process. The baseline is a fresh hand-written PyTorch script (model, data,
   optimizer defined inline, no typedrunner import) timed to its first iteration the same way.

3. **Whole process and peak memory** (``whole_process.py``): a fresh ``python -m typedrunner
   +experiment=mlp`` (10 epochs, ``num_workers=0``) against a fresh hand-written script doing the same
   work, launch to exit, and each one's peak RSS.
4. **Constant per-iteration cost** (``constant_cost.py``, in a child process): the Python calls per
   iteration at iterations 1,000 and 100,000 of a long iteration-based run on a tiny model.

Targets (issue 14): the loop at most 1.10x the hand-written loop (MMEngine measures 1.40x, Lightning
2.8x), the whole process at most 1.15x, start to first iteration at most the hand-written script's
+ 0.3 s, peak memory at most the hand-written script's + 30 MiB, the same work per iteration at
100,000 as at 1,000. The script says whether each is met and always exits 0.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import contextlib
import gc
import io
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402
from torch import Tensor  # noqa: E402
from torch.utils.data import DataLoader, default_collate  # noqa: E402

from examples.seed_mlp import MyAwesomeModel, MyDataset  # noqa: E402
from typedrunner.config import Randomness, RunnerConfig  # noqa: E402
from typedrunner.hooks import Hook, RunView  # noqa: E402
from typedrunner.parts.data import DefaultSampler  # noqa: E402

if TYPE_CHECKING:
    pass

TARGET_RATIO = 1.10
START_TARGET_S = 0.3
FIRST_ITER_ENV = "TYPEDRUNNER_BENCH_FIRST_ITER_FILE"


# ----------------------------------------------------------------------------------------------
# The seed workload, twice
# ----------------------------------------------------------------------------------------------
@dataclass
class LoopResult:
    seconds: float
    iters: int
    accuracy: float
    checksum: float
    """Sum of the trained parameters: equal for both loops when they did the same work."""


def _checksum(model: torch.nn.Module) -> float:
    return float(sum(float(p.detach().double().sum()) for p in model.parameters()))


def bench_config(work_dir: str, seed: int) -> RunnerConfig:
    """The seed's RunnerConfig with ``num_workers=0`` and a fixed seed."""
    from examples.train_python_config import seed_config

    cfg = seed_config(work_dir=work_dir, max_epochs=10)
    assert cfg.train_dataloader is not None and cfg.val_dataloader is not None
    return cfg.model_copy(
        update={
            "train_dataloader": cfg.train_dataloader.model_copy(update={"num_workers": 0}),
            "val_dataloader": cfg.val_dataloader.model_copy(update={"num_workers": 0}),
            "randomness": Randomness(seed=seed),
        }
    )


def run_typedrunner(seed: int) -> LoopResult:
    """Build a Runner on the seed (not timed), then time ``runner.train()``."""
    from typedrunner.runner import Runner

    with tempfile.TemporaryDirectory(prefix="tr_bench_") as work_dir, contextlib.redirect_stdout(io.StringIO()):
        # The console logger binds sys.stdout when the Runner is built: build it inside the redirect.
        runner = Runner(bench_config(work_dir, seed))
        gc.collect()
        start = time.perf_counter()
        runner.train()
        seconds = time.perf_counter() - start
    accuracy = next(iter(runner.last_metrics.values()), float("nan"))
    return LoopResult(seconds, runner.iter, accuracy, _checksum(runner.model))


def run_hand(seed: int) -> LoopResult:
    """The same work written by hand: same seeding order, model, data order, optimizer, schedule,
    validation, checkpoints and host reads of the loss. Setup is not timed; the loop is."""
    import random

    max_epochs, val_begin, val_interval, log_interval = 10, 2, 1, 10
    # Same order of random draws as the Runner: seed, model init, then the datasets (which reseed).
    random.seed(seed)
    torch.manual_seed(seed)
    model = MyAwesomeModel(layers=2, activation="relu")
    train_set = MyDataset(is_train=True, size=10000)
    val_set = MyDataset(is_train=False, size=1000)
    sampler = DefaultSampler(train_set, shuffle=True, seed=seed)
    train_loader = DataLoader(train_set, batch_size=64, sampler=sampler, collate_fn=default_collate, num_workers=0)
    val_loader = DataLoader(
        val_set,
        batch_size=1000,
        sampler=DefaultSampler(val_set, shuffle=False, seed=seed),
        collate_fn=default_collate,
        num_workers=0,
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[4, 8], gamma=0.1)
    logged: list[float] = []
    accuracy = float("nan")
    iters = 0

    with tempfile.TemporaryDirectory(prefix="hand_bench_") as ckpt_dir:
        gc.collect()
        start = time.perf_counter()
        model.train()
        for epoch in range(max_epochs):
            sampler.set_epoch(epoch)
            window: list[Tensor] = []
            for i, (data, labels) in enumerate(train_loader):
                loss = model(data, labels, mode="loss")["loss"]
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                window.append(loss.detach())
                if (i + 1) % log_interval == 0:  # the logger's one host read per interval
                    logged.append(torch.stack(window).mean().item())
                    window.clear()
                iters += 1
            scheduler.step()
            state: dict[str, Any] = {
                "meta": {"epoch": epoch + 1, "iter": iters, "seed": seed},
                "state_dict": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "param_schedulers": [scheduler.state_dict()],
            }
            torch.save(state, Path(ckpt_dir) / f"epoch_{epoch + 1}.pth")
            done = epoch + 1
            if done >= val_begin and (done % val_interval == 0 or done == max_epochs):
                model.eval()
                correct, total = 0, 0
                with torch.no_grad():
                    for data, labels in val_loader:
                        scores, gt = model(data, labels, mode="predict")
                        correct += int((scores.argmax(dim=1) == gt).sum())
                        total += len(gt)
                model.train()
                accuracy = 100 * correct / total
        seconds = time.perf_counter() - start
    return LoopResult(seconds, iters, accuracy, _checksum(model))


# ----------------------------------------------------------------------------------------------
# Process start -> first training iteration
# ----------------------------------------------------------------------------------------------
class FirstIterHook(Hook):
    """Writes ``time.time()`` into ``$TYPEDRUNNER_BENCH_FIRST_ITER_FILE`` at the first training iteration."""

    priority = "HIGHEST"

    def __init__(self) -> None:
        self.done = False

    def before_train_iter(self, runner: RunView, batch_idx: int, data_batch: Any = None) -> None:
        if not self.done:
            now = time.time()
            self.done = True
            Path(os.environ[FIRST_ITER_ENV]).write_text(repr(now), encoding="utf-8")


# A plain PyTorch script, written as a user would without a framework: the startup baseline.
HAND_STARTUP_SCRIPT = """
import math, os, time
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2))
    def forward(self, x):
        return self.net(x)

def rings(seed, size):
    torch.manual_seed(seed)
    labels = torch.randint(0, 2, (size,))
    r = 3 * (labels + 1) + torch.randn(size)
    theta = torch.rand(size) * 2 * math.pi
    return TensorDataset(torch.vstack([r * torch.cos(theta), r * torch.sin(theta)]).T, labels)

torch.manual_seed(0)
model = MLP()
train_loader = DataLoader(rings(0, 10000), batch_size=64, shuffle=True, num_workers=0)
val_loader = DataLoader(rings(3407, 1000), batch_size=1000, num_workers=0)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[4, 8], gamma=0.1)
for data, labels in train_loader:
    with open(os.environ["FIRST_ITER_ENV"], "w") as f:
        f.write(repr(time.time()))
    loss = F.cross_entropy(model(data), labels)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    break
""".replace("FIRST_ITER_ENV", FIRST_ITER_ENV)


def time_to_first_iter(command: list[str], marker: Path) -> float:
    """Launch ``command`` fresh; return seconds from launch to the time it wrote into ``marker``."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", FIRST_ITER_ENV: str(marker)}
    marker.unlink(missing_ok=True)
    launched = time.time()
    proc = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not marker.is_file():
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:] + "\n")
        raise RuntimeError(f"{command[:3]} failed (exit {proc.returncode}) or never reached its first iteration")
    return float(marker.read_text(encoding="utf-8")) - launched


def startup_times(runs: int) -> tuple[list[float], list[float]]:
    tr: list[float] = []
    hand: list[float] = []
    with tempfile.TemporaryDirectory(prefix="startup_bench_") as tmp:
        marker = Path(tmp) / "first_iter"
        for i in range(runs):
            run_dir = Path(tmp) / f"run{i}"
            tr_cmd = [
                sys.executable,
                "-m",
                "typedrunner",
                "+experiment=mlp",
                "train_cfg.max_epochs=1",
                "train_cfg.val_begin=1",  # the config rejects val_begin > max_epochs
                "~param_scheduler",  # and milestones [4, 8] that would never fire in 1 epoch
                "train_dataloader.num_workers=0",
                "val_dataloader.num_workers=0",
                f"hydra.run.dir={run_dir}",
                # The hook by dotted path: the child imports this file as ``benchmarks.overhead``.
                "+custom_hooks=[{type: benchmarks.overhead.FirstIterHook}]",
            ]
            tr.append(time_to_first_iter(tr_cmd, marker))
            hand.append(time_to_first_iter([sys.executable, "-c", HAND_STARTUP_SCRIPT], marker))
    return tr, hand


# ----------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------
def _fmt_list(values: list[float]) -> str:
    return ", ".join(f"{v:.3f}" for v in values)


def report_loops(tr: list[LoopResult], hand: list[LoopResult]) -> Mapping[str, float]:
    tr_s = [r.seconds for r in tr]
    hand_s = [r.seconds for r in hand]
    med_tr, med_hand = statistics.median(tr_s), statistics.median(hand_s)
    iters = tr[0].iters
    if any(r.iters != iters for r in [*tr, *hand]):
        print(f"WARNING: iteration counts differ: {[r.iters for r in tr]} vs {[r.iters for r in hand]}")
    print(f"typedrunner train() s per round: {_fmt_list(tr_s)}")
    print(f"hand-written loop s per round:   {_fmt_list(hand_s)}")
    tr_acc = {round(r.accuracy, 4) for r in tr}
    hand_acc = {round(r.accuracy, 4) for r in hand}
    tr_sum = {r.checksum for r in tr}
    hand_sum = {r.checksum for r in hand}
    same = tr_acc == hand_acc and tr_sum == hand_sum and len(tr_acc) == len(tr_sum) == 1
    print(
        f"final val accuracy: typedrunner {sorted(tr_acc)}, hand-written {sorted(hand_acc)}; "
        f"parameter sums equal: {tr_sum == hand_sum} -> {'identical' if same else 'DIFFERENT'} work"
    )
    return {
        "median_tr": med_tr,
        "median_hand": med_hand,
        "min_tr": min(tr_s),
        "min_hand": min(hand_s),
        "ratio": med_tr / med_hand,
        "min_ratio": min(tr_s) / min(hand_s),
        "overhead_us": (med_tr - med_hand) / iters * 1e6,
        "iters": float(iters),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds of each loop (default 5)")
    parser.add_argument("--startup-runs", type=int, default=3, help="fresh processes of each kind (default 3)")
    parser.add_argument("--seed", type=int, default=2024, help="seed of both loops (default 2024)")
    parser.add_argument(
        "--process-runs", type=int, default=3, help="whole-process runs of each kind (default 3; 0 skips)"
    )
    parser.add_argument(
        "--constant-cost",
        default="1000,100000",
        help="iterations whose per-iteration work constant_cost.py compares (default 1000,100000; '' skips)",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), OMP_NUM_THREADS="
        f"{os.environ.get('OMP_NUM_THREADS')}, {args.rounds} rounds (alternating; order swaps each round); "
        "typedrunner's console log goes to an in-memory buffer"
    )
    tr: list[LoopResult] = []
    hand: list[LoopResult] = []
    for round_idx in range(args.rounds):
        order = ("tr", "hand") if round_idx % 2 == 0 else ("hand", "tr")
        for which in order:
            if which == "tr":
                tr.append(run_typedrunner(args.seed))
            else:
                hand.append(run_hand(args.seed))
        print(f"  round {round_idx + 1}: typedrunner {tr[-1].seconds:.3f} s, hand-written {hand[-1].seconds:.3f} s")
    loops = report_loops(tr, hand)

    print(f"startup: {args.startup_runs} fresh process(es) of each kind ...")
    tr_start, hand_start = startup_times(args.startup_runs)
    print(f"typedrunner CLI start -> first iter s: {_fmt_list(tr_start)}")
    print(f"hand-written start -> first iter s:    {_fmt_list(hand_start)}")
    med_tr_start, med_hand_start = statistics.median(tr_start), statistics.median(hand_start)

    print()
    print(
        f"loop time (median of {args.rounds}): typedrunner {loops['median_tr']:.3f} s, "
        f"hand-written {loops['median_hand']:.3f} s, ratio {loops['ratio']:.2f}x, "
        f"overhead {loops['overhead_us']:.0f} us/iter ({int(loops['iters'])} iters)"
    )
    print(
        f"loop time (min of {args.rounds}):    typedrunner {loops['min_tr']:.3f} s, "
        f"hand-written {loops['min_hand']:.3f} s, ratio {loops['min_ratio']:.2f}x"
    )
    print(
        f"process start -> first training iteration (median of {args.startup_runs}): "
        f"typedrunner {med_tr_start:.2f} s, hand-written {med_hand_start:.2f} s, "
        f"difference {med_tr_start - med_hand_start:+.2f} s"
    )
    met = "met" if loops["ratio"] <= TARGET_RATIO else "NOT met"
    print(f"loop target <= {TARGET_RATIO}x: {met} (MMEngine measures 1.40x, Lightning 2.8x)")
    start_met = "met" if med_tr_start - med_hand_start <= START_TARGET_S else "NOT met"
    print(f"start target <= hand-written + {START_TARGET_S} s: {start_met}")
    if args.process_runs > 0:
        from benchmarks.whole_process import measure, report

        for line in report(*measure(args.process_runs)):
            print(line)
    if args.constant_cost:
        starts = [str(int(n)) for n in args.constant_cost.split(",")]
        script = str(REPO_ROOT / "benchmarks" / "constant_cost.py")
        done = subprocess.run([sys.executable, script, *starts], capture_output=True, text=True, check=True)
        print("constant cost: " + done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
