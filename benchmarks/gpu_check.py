"""The checks that need a GPU, in one script (the lent GPU machine's time is short).

Run from the repo root on a machine with CUDA:  OMP_NUM_THREADS=1 python benchmarks/gpu_check.py
Prints one line per check and exits 1 if any fails. On a machine without CUDA it says so and exits 0.

1. The seed workload trains on the GPU (batches moved by the default data preprocessor, pinned
   memory, two workers) and reaches >= 93% validation accuracy.
2. AMP float16 with a GradScaler (AmpOptimWrapper's default on CUDA) trains, keeps finite losses,
   saves the scaler in the checkpoint, and resumes from it.
3. AMP bfloat16 trains; val_cfg fp16 validates under float16 autocast.
4. The contract probe reports float64 data into a float32 model on the GPU before training.
5. EmptyCacheHook registers for its events when CUDA is there.
6. DDP on one GPU (torchrun, world size 1, nccl): 2 epochs, then resumed to a third.
7. FSDP2 on one GPU (torchrun, world size 1, nccl): ``model_wrapper_cfg.type=FSDP2`` with bfloat16
   parameters trains the seed, writes a sharded ``epoch_N.dcp/`` checkpoint, and resumes from it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import contextlib

import torch

from examples.seed_mlp import MyDataset
from examples.train_python_config import seed_config
from typedrunner.config import (
    SGD,
    DataLoader,
    DefaultSampler,
    OptimWrapper,
    Randomness,
    TrainLoop,
    ValLoop,
)
from typedrunner.errors import ContractError
from typedrunner.registry.lazy import lazy
from typedrunner.runner import Runner
from typedrunner.testing import ToyDataset, toy_config

RESULTS: list[tuple[str, bool, str]] = []


def check(name: str) -> Callable[[Callable[[Path], str]], Callable[[Path], str]]:
    def wrap(fn: Callable[[Path], str]) -> Callable[[Path], str]:
        def run(work: Path) -> str:
            started = time.perf_counter()
            try:
                detail = fn(work / name)
                RESULTS.append((name, True, f"{detail} ({time.perf_counter() - started:.1f} s)"))
            except Exception as e:
                traceback.print_exc()
                RESULTS.append((name, False, f"{type(e).__name__}: {e}"))
            return name

        return run

    return wrap


@check("seed_on_gpu")
def seed_on_gpu(work: Path) -> str:
    runner = Runner(seed_config(str(work)).model_copy(update={"randomness": Randomness(seed=0)}))
    assert runner.device.type == "cuda", runner.device
    runner.train()
    accuracy = runner.last_metrics["accuracy"]
    assert accuracy >= 93.0, accuracy
    assert next(runner.model.parameters()).device.type == "cuda"
    # the console line's `memory` column (MMEngine's: peak MB since the last log) is logged on CUDA
    lines = [json.loads(line) for line in (work / "scalars.jsonl").read_text().splitlines()]
    memory = [line["memory"] for line in lines if line.get("mode") == "train" and "memory" in line]
    assert memory and all(m > 0 for m in memory), lines[:3]
    return f"accuracy {accuracy:.1f}% on {torch.cuda.get_device_name()}, memory column {max(memory):.0f} MB"


@check("amp_fp16_gradscaler")
def amp_fp16(work: Path) -> str:
    wrapper = OptimWrapper(type="AmpOptimWrapper", optimizer=SGD(lr=0.1))
    runner = Runner(toy_config(work, max_epochs=3, optim_wrapper=wrapper))
    amp = runner.optim_wrapper
    assert getattr(amp, "dtype", None) == torch.float16 and getattr(amp, "scaler", None) is not None
    runner.train()
    checkpoint = torch.load(work / "epoch_3.pth", weights_only=True)
    assert "loss_scaler" in checkpoint["optimizer"], sorted(checkpoint["optimizer"])
    scale = float(checkpoint["optimizer"]["loss_scaler"]["scale"])
    resumed = Runner(toy_config(work, max_epochs=4, optim_wrapper=wrapper, resume=True))
    assert resumed.epoch == 3
    resumed.train()
    assert all(torch.isfinite(p).all() for p in resumed.model.parameters())
    return f"scale {scale:g}, accuracy {runner.last_metrics['accuracy']:.1f}%, resumed to epoch {resumed.epoch}"


@check("amp_bf16_and_fp16_val")
def amp_bf16(work: Path) -> str:
    wrapper = OptimWrapper(type="AmpOptimWrapper", dtype="bfloat16", optimizer=SGD(lr=0.1))
    runner = Runner(toy_config(work, max_epochs=2, optim_wrapper=wrapper, val_cfg=ValLoop(fp16=True)))
    runner.train()
    return f"accuracy {runner.last_metrics['accuracy']:.1f}%"


@check("probe_float64_on_gpu")
def probe(work: Path) -> str:
    class Float64Toy(ToyDataset):
        def __init__(self, size: int = 64, dim: int = 4, seed: int = 0) -> None:
            super().__init__(size, dim, seed)
            self.data = self.data.double()

    cfg = toy_config(
        work, train_dataloader=DataLoader(dataset=lazy(Float64Toy, size=64), sampler=DefaultSampler(), batch_size=16)
    )
    try:
        Runner.checked(cfg)
    except ContractError as e:
        assert "float64" in str(e), str(e)
        assert not work.exists() or not list(work.glob("*.pth"))
        return "refused before training: " + str(e).splitlines()[-1].strip()[:80]
    raise AssertionError("the float64 batch was not reported")


@check("resume_on_gpu")
def resume_on_gpu(work: Path) -> str:
    from typedrunner.hooks import Hook, RunView

    class Interrupt(Exception):
        pass

    class StopAfter(Hook):
        priority = "LOWEST"

        def after_train_epoch(self, runner: RunView) -> None:
            if runner.epoch + 1 == 2:
                raise Interrupt

    straight = Runner(toy_config(work / "straight", max_epochs=4))
    straight.train()
    cut = Runner(toy_config(work / "cut", max_epochs=4))
    cut.register_hook(StopAfter())
    with contextlib.suppress(Interrupt):
        cut.train()
    resumed = Runner(toy_config(work / "cut", max_epochs=4, resume=True))
    resumed.train()
    pairs = list(zip(straight.model.state_dict().values(), resumed.model.state_dict().values(), strict=True))
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in pairs)
    exact = all(torch.equal(a, b) for a, b in pairs)
    return (
        f"resumed at epoch 2 of 4; final weights {'bit-identical' if exact else 'equal within 1e-6'} to a straight run"
    )


@check("empty_cache_hook")
def empty_cache(work: Path) -> str:
    runner = Runner(toy_config(work, max_epochs=1, custom_hooks=[{"type": "EmptyCacheHook"}]))
    order = runner.hooks.order()
    assert "EmptyCacheHook" in order.get("after_train_epoch", []), order
    runner.train()
    return "registered for after_train_epoch / after_val_epoch"


def _torchrun_seed(work: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """The seed under ``torchrun --standalone --nproc-per-node=1`` (one GPU, nccl), in ``work``."""
    torchrun = str(Path(sys.executable).parent / "torchrun")
    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")])))
    command = [
        torchrun,
        "--standalone",
        "--nproc-per-node=1",
        "-m",
        "typedrunner",
        "+experiment=mlp",
        "~param_scheduler",  # its milestones lie past the short run's end
        "launcher=pytorch",
        "+randomness.seed=0",
        f"hydra.run.dir={work}",
        *extra,
    ]
    return subprocess.run(command, env=env, capture_output=True, text=True, check=False)


@check("ddp_one_gpu")
def ddp_one_gpu(work: Path) -> str:
    first = _torchrun_seed(work, "train_cfg.max_epochs=2")
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    assert "device=cuda" in first.stdout and (work / "epoch_2.pth").is_file(), first.stdout[-2000:]
    second = _torchrun_seed(work, "train_cfg.max_epochs=3", "resume=true")
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-2000:]
    assert "resumed" in second.stdout and (work / "epoch_3.pth").is_file(), second.stdout[-2000:]
    accuracy = json.loads((work / "summary.json").read_text())["final_metrics"]["accuracy"]
    return f"DDP, nccl: accuracy {accuracy:.1f}% after 3 epochs (2, then resumed from epoch_2.pth)"


@check("fsdp2_one_gpu")
def fsdp2_one_gpu(work: Path) -> str:
    fsdp = [
        "model_wrapper_cfg.type=FSDP2",
        "model_wrapper_cfg.shard_classes=[Linear]",
        "model_wrapper_cfg.mixed_precision.param_dtype=bfloat16",
        "model_wrapper_cfg.mixed_precision.reduce_dtype=float32",
    ]
    first = _torchrun_seed(work, *fsdp, "train_cfg.max_epochs=2")
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    assert (work / "epoch_2.dcp" / ".metadata").is_file(), sorted(p.name for p in work.iterdir())
    assert "device=cuda" in first.stdout, first.stdout[-2000:]
    second = _torchrun_seed(work, *fsdp, "train_cfg.max_epochs=3", "resume=true")
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-2000:]
    assert "resumed" in second.stdout and (work / "epoch_3.dcp").is_dir(), second.stdout[-2000:]
    accuracy = json.loads((work / "summary.json").read_text())["final_metrics"]["accuracy"]
    return f"nccl, bfloat16 params: accuracy {accuracy:.1f}% after 3 epochs (2, then resumed from epoch_2.dcp)"


def main() -> int:
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check here")
        return 0
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}")
    _ = MyDataset, TrainLoop  # the seed's classes are importable on the device too
    with tempfile.TemporaryDirectory() as tmp:
        for run in (seed_on_gpu, amp_fp16, amp_bf16, resume_on_gpu, probe, empty_cache, ddp_one_gpu, fsdp2_one_gpu):
            run(Path(tmp))
    for name, ok, detail in RESULTS:
        print(f"{'PASS' if ok else 'FAIL'} {name}: {detail}")
    return 0 if all(ok for _, ok, _ in RESULTS) else 1


if __name__ == "__main__":
    sys.exit(main())
