"""Distributed training on the CPU with gloo: real ``torchrun`` (and SLURM-style) process pairs on tiny data.

Each test starts real processes (the command line, or ``tests/dist_support.py``) and reads back what
they wrote: checkpoints, the run directory, exit codes, reports.
"""

from __future__ import annotations

import json
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from examples.seed_mlp import MyAwesomeModel, MyDataset
from tests.dist_support import SMALL, validate
from tests.helpers import REPO, cli_env, explain, read_checkpoint, run_cli, seed_config
from typedrunner.engine.launchers import detect
from typedrunner.parts.data import DefaultSampler
from typedrunner.runner import Runner

README_TORCHRUN = "torchrun --standalone --nproc-per-node=2 -m typedrunner +experiment=mlp launcher=pytorch"
README_SRUN = "srun --ntasks-per-node=2 python -m typedrunner +experiment=mlp launcher=slurm"
README_SWEEP = (
    "torchrun --standalone --nproc-per-node=2 -m typedrunner -m +experiment=mlp launcher=pytorch "
    "optim_wrapper.optimizer.lr=1e-3,1e-2"
)
"""The README's commands ("Training on several GPUs and nodes"); the tests below run them on small data."""
TORCHRUN = [str(Path(sys.executable).parent / "torchrun"), "--standalone", "--nproc-per-node=2"]


def test_the_readme_gives_the_commands_these_tests_run() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert README_TORCHRUN in readme and README_SRUN in readme and README_SWEEP in readme
    assert README_TORCHRUN.split()[:3] == ["torchrun", *TORCHRUN[1:]]
    assert "+experiment=mlp" in SMALL


def torchrun(
    args: list[str], env: dict[str, str], timeout: float = 120, module: str = "typedrunner"
) -> subprocess.CompletedProcess[str]:
    """``torchrun --standalone --nproc-per-node=2 -m MODULE ARGS`` (the command line by default)."""
    return subprocess.run(
        [*TORCHRUN, "-m", module, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def weights(path: Path) -> dict[str, torch.Tensor]:
    state = read_checkpoint(path)["state_dict"]
    assert isinstance(state, dict)
    return state


def assert_close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=f"{key} differs")


def files_in(run_dir: Path) -> set[str]:
    return {str(p.relative_to(run_dir)) for p in run_dir.rglob("*")}


# ----------------------------------------------------------------------------------------------
# DDP: 2 ranks x batch b == 1 process x batch 2b; one run directory with rank 0's files only
# ----------------------------------------------------------------------------------------------
TWO_EPOCHS = [*SMALL, "train_cfg.max_epochs=2"]


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seed under torchrun: 2 ranks x batch 32, 2 epochs (8 steps); its run directory. The run
    directory's name holds ``${now:...}`` to the microsecond: ranks resolving their own moments would
    make two."""
    parent = tmp_path_factory.mktemp("two_ranks")
    env = cli_env()
    result = torchrun(
        [
            *TWO_EPOCHS,
            "launcher=pytorch",
            "train_dataloader.batch_size=32",
            f"hydra.run.dir={parent}/${{now:%H%M%S%f}}",
            "visualizer=local",  # a visualizer backend writes on rank 0 only
            "log_processor.progress=on",  # and so does the progress bar
        ],
        env,
    )
    assert result.returncode == 0, explain(result)
    assert "rank=1" in result.stdout, result.stdout  # rank 1 logs warnings only, tagged with its rank
    assert result.stdout.count("curves: ") == 1, result.stdout  # rank 0 draws the curves
    assert result.stdout.count("Epoch(train) [1]:   0%") == 1, result.stdout  # one progress bar (rank 0's) starts
    runs = list(parent.iterdir())
    assert len(runs) == 1, runs
    return runs[0]


def test_two_ranks_train_as_one_process_with_twice_the_batch(two_ranks: Path, tmp_path: Path) -> None:
    one = Runner(seed_config(REPO, tmp_path / "one", "train_dataloader.batch_size=64", base=TWO_EPOCHS))
    one.train()
    assert_close(weights(two_ranks / "epoch_2.pth"), weights(tmp_path / "one" / "epoch_2.pth"))
    assert json.loads((two_ranks / "summary.json").read_text())["iters"] == 8  # 2 epochs x 256 / (2 x 32)


def test_one_run_directory_holds_rank_zeros_files_once(two_ranks: Path) -> None:
    hydra = {".hydra", ".hydra/config.yaml", ".hydra/hydra.yaml", ".hydra/overrides.yaml"}
    written = {
        "config.json",
        "run.log",
        "scalars.jsonl",
        "summary.json",
        "epoch_1.pth",
        "epoch_2.pth",
        "last_checkpoint",
        "curves.png",
    }
    local = {"vis_data", "vis_data/scalars.json", "vis_data/config.json"}
    assert files_in(two_ranks) == hydra | written | local
    # once: 2 validations and the summary (final, best)
    assert len((two_ranks / "vis_data" / "scalars.json").read_text().splitlines()) == 3
    # one writer: each logged scalar once (8 steps logged every 10 iterations: none; 2 validations)
    lines = [json.loads(line) for line in (two_ranks / "scalars.jsonl").read_text().splitlines()]
    assert [(line["mode"], line["epoch"]) for line in lines] == [("val", 1), ("val", 2)]
    assert "rank=1" not in (two_ranks / "run.log").read_text()
    overrides = (two_ranks / ".hydra" / "overrides.yaml").read_text()
    assert "launcher=pytorch" in overrides and "output_subdir" not in overrides  # rank 0's, not rank 1's


def test_validation_over_two_ranks_equals_one_process_exactly(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    """101 points (not divisible by 2) in batches of 4: a per-batch metric and a per-sample one."""
    validate(str(tmp_path / "one.json"), "none")
    two = torchrun([str(tmp_path / "two.json"), "pytorch"], subprocess_env, module="tests.dist_support")
    assert two.returncode == 0, explain(two)
    single = json.loads((tmp_path / "one.json").read_text())
    assert single["samples"] == 101.0
    assert json.loads((tmp_path / "two.json").read_text()) == single


def test_a_sweep_under_torchrun_runs_each_job_on_every_rank(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    """The README's sweep command: each job is one 2-rank DDP run, in its own directory."""
    result = torchrun(
        [
            "-m",
            *SMALL,
            "train_cfg.max_epochs=1",
            "launcher=pytorch",
            "optim_wrapper.optimizer.lr=1e-3,1e-2",
            f"hydra.sweep.dir={tmp_path}/sweep",
        ],
        subprocess_env,
    )
    assert result.returncode == 0, explain(result)
    sweep = tmp_path / "sweep"
    for job in ("0", "1"):
        assert {"summary.json", "epoch_1.pth", "run.log", ".hydra"} <= files_in(sweep / job)
        assert json.loads((sweep / job / "summary.json").read_text())["iters"] == 2  # 256 / (2 ranks x 64)
    assert "2 jobs, 2 ok" in (sweep / "report.md").read_text()
    assert result.stdout.count("sweep report (2 jobs)") == 1, result.stdout  # rank 0 writes the report


# ----------------------------------------------------------------------------------------------
# Failures: one report, every rank stops
# ----------------------------------------------------------------------------------------------
def test_a_failing_rank_stops_every_rank_promptly(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    started = time.monotonic()
    result = torchrun(
        [
            *SMALL,
            "launcher=pytorch",
            "model.type=tests.dist_support.FailsOnRankOne",
            "train_cfg.max_epochs=4",
            f"hydra.run.dir={tmp_path}/run",
        ],
        subprocess_env,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 1, explain(result)
    assert elapsed < 90, f"took {elapsed:.0f} s: a rank waited for its collective's timeout"  # default: 1800 s
    assert "[rank 1] training failed" in result.stderr and "ValueError: boom on rank 1" in result.stderr
    report = (tmp_path / "run" / "error_report.txt").read_text()
    assert report.startswith("rank 1: training failed at iteration"), report
    assert "boom on rank 1" in report
    assert "Traceback" not in report


def test_a_probe_failure_on_one_rank_is_reported_once_and_every_rank_exits_2(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    """Only rank 1's first batch (odd indices) holds float labels: its probe fails, rank 0's passes."""
    result = torchrun(
        [
            *SMALL,
            "launcher=pytorch",
            "train_dataloader.dataset.type=tests.dist_support.OddLabelsFloat",
            "train_dataloader.sampler.shuffle=false",
            f"hydra.run.dir={tmp_path}/run",
        ],
        subprocess_env,
    )
    assert result.returncode != 0
    assert result.stderr.count("exitcode  : 2") == 2, result.stderr  # torchrun's summary: both ranks exited 2
    assert result.stderr.count("a problem found before training, on rank 1") == 1, result.stderr  # rank 0 only
    report = (tmp_path / "run" / "error_report.txt").read_text()
    assert "rank 1: " in report and "rank 0: " not in report, report
    assert "[probe: train]" in report and "expected target dtype to be Long" in report, report
    hydra = {".hydra", ".hydra/config.yaml", ".hydra/hydra.yaml", ".hydra/overrides.yaml"}
    assert files_in(tmp_path / "run") == {"error_report.txt", *hydra}  # nothing trained, nothing else written


def test_launcher_pytorch_without_torchrun_is_refused(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    result = run_cli([*SMALL, "launcher=pytorch", f"hydra.run.dir={tmp_path}/run"], subprocess_env)
    assert result.returncode == 2, explain(result)
    assert "launcher: 'pytorch' needs its launcher's environment" in result.stderr
    assert "torchrun --nproc-per-node=N -m typedrunner" in result.stderr


# ----------------------------------------------------------------------------------------------
# SLURM: two real processes with SLURM's environment; SIGTERM to both; exact resume
# ----------------------------------------------------------------------------------------------
def free_slurm_port() -> int:
    """A free port that ``15000 + last four digits of SLURM_JOB_ID`` names."""
    for _ in range(100):
        port = random.randrange(15000, 25000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


def srun_pair(args: list[str], env: dict[str, str], port: int) -> list[subprocess.Popen[str]]:
    """What ``srun --ntasks=2 python -m typedrunner ARGS`` starts on one node: two tasks."""
    procs = []
    for rank in range(2):
        task_env = {k: v for k, v in env.items() if k not in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")}
        task_env |= {
            "SLURM_PROCID": str(rank),
            "SLURM_LOCALID": str(rank),
            "SLURM_NTASKS": "2",
            "SLURM_NODELIST": "localhost",
            "SLURM_JOB_ID": str(port - 15000),
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "typedrunner", *args],
                cwd=REPO,
                env=task_env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    return procs


def finish(procs: list[subprocess.Popen[str]]) -> list[tuple[int, str, str]]:
    out = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=120)
        out.append((proc.returncode, stdout, stderr))
    return out


def test_sigterm_to_every_rank_saves_once_exits_3_and_resumes_exactly(
    two_ranks: Path, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    """2 ranks stopped by SIGTERM mid-run, then resumed, end with the uninterrupted 2-rank run's weights."""
    common = [*TWO_EPOCHS, "train_dataloader.batch_size=32", "launcher=slurm"]
    run = tmp_path / "stopped"
    port = free_slurm_port()
    procs = srun_pair([*common, "model.type=tests.dist_support.Slow", f"hydra.run.dir={run}"], subprocess_env, port)
    deadline = time.monotonic() + 90
    while not (run / "run.log").is_file() or "training" not in (run / "run.log").read_text():
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), finish(procs)
        time.sleep(0.1)
    time.sleep(0.4)  # a few 0.25 s iterations in (8 in all)
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    results = finish(procs)
    assert [code for code, _, _ in results] == [3, 3], results
    stopped = sorted(p.name for p in run.glob("stopped_iter_*.pth"))
    assert len(stopped) == 1, stopped
    assert "stopped by SIGTERM" in results[0][2] and results[1][2] == "", results

    resumed = finish(srun_pair([*common, "resume=true", f"hydra.run.dir={run}"], subprocess_env, port))
    assert [code for code, _, _ in resumed] == [0, 0], resumed
    assert_close(weights(run / "epoch_2.pth"), weights(two_ranks / "epoch_2.pth"))


# ----------------------------------------------------------------------------------------------
# In-process pieces: the launchers' environments, the sampler's shards
# ----------------------------------------------------------------------------------------------
def test_slurm_environment_gives_rank_world_and_master(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("PATH", "")  # no scontrol here: the node list is read as written
    monkeypatch.setenv("SLURM_PROCID", "5")
    monkeypatch.setenv("SLURM_NTASKS", "8")
    monkeypatch.setenv("SLURM_LOCALID", "1")
    monkeypatch.setenv("SLURM_NODELIST", "gpu[07-10],cpu3")
    monkeypatch.setenv("SLURM_JOB_ID", "1234567")
    env = detect()
    assert env is not None
    assert (env.launcher, env.rank, env.world_size, env.local_rank) == ("slurm", 5, 8, 1)
    assert (env.master_addr, env.master_port) == ("gpu07", 15000 + 4567)
    monkeypatch.setenv("MASTER_PORT", "29999")
    monkeypatch.setenv("MASTER_ADDR", "head")
    monkeypatch.delenv("SLURM_PROCID")
    assert detect() is None  # MASTER_* alone (no RANK, no SLURM task) is one process


@pytest.mark.parametrize(("size", "shuffle", "round_up"), [(10, True, True), (11, True, True), (11, False, False)])
def test_default_sampler_shards_like_mmengine(size: int, shuffle: bool, round_up: bool) -> None:
    shards = []
    for rank in range(3):
        sampler = DefaultSampler(range(size), shuffle=shuffle, seed=7, round_up=round_up)
        sampler.rank, sampler.world_size = rank, 3
        sampler.set_epoch(2)
        shards.append(list(sampler))
        assert len(shards[-1]) == len(sampler)
    alone = DefaultSampler(range(size), shuffle=shuffle, seed=7, round_up=round_up)
    alone.set_epoch(2)
    order = list(alone)
    if round_up:  # padded with the order's own first indices; every rank the same length
        padded = (order * 2)[: 3 * -(-size // 3)]
        assert shards == [padded[r::3] for r in range(3)]
        assert len({len(s) for s in shards}) == 1
    else:
        assert shards == [order[r::3] for r in range(3)]
    assert sorted(set(i for s in shards for i in s)) == list(range(size))


def test_accumulating_steps_skip_the_gradient_all_reduce(tmp_path: Path) -> None:
    """accumulative_counts=2 under DDP: 5 steps, 3 all-reduces (steps 2, 4 and the run's last, 5)."""
    import torch.distributed as dist
    from torch._C._distributed_c10d import FileStore, GradBucket
    from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

    from typedrunner.engine.loops import train_step_for
    from typedrunner.parts.model import BaseDataPreprocessor
    from typedrunner.parts.optim import OptimWrapper

    dist.init_process_group("gloo", store=FileStore(str(tmp_path / "store"), 1), rank=0, world_size=1)
    try:
        model = MyAwesomeModel(layers=2)
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        reduced: list[int] = []

        def counting(state: object, bucket: GradBucket) -> torch.futures.Future[torch.Tensor]:
            reduced.append(len(reduced))
            return allreduce_hook(None, bucket)  # type: ignore[arg-type]

        # DDP checks the hook's annotations as objects (this module's are strings: postponed evaluation)
        counting.__annotations__ = {"bucket": GradBucket, "return": torch.futures.Future[torch.Tensor]}
        ddp.register_comm_hook(None, counting)
        wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1), accumulative_counts=2)
        wrapper.max_calls = 5
        step = train_step_for(ddp, BaseDataPreprocessor())
        data = MyDataset(is_train=True, size=8)
        synced = []
        for _ in range(5):
            synced.append(wrapper.should_sync())
            step((data.data, data.labels), wrapper)
        assert synced == [False, True, False, True, True]
        assert len(reduced) == 3
    finally:
        dist.destroy_process_group()


def test_sync_bn_on_the_cpu_is_refused() -> None:
    from typedrunner.config import RunnerConfig
    from typedrunner.engine.distributed import DistSetup, wrap_model
    from typedrunner.engine.launchers import LaunchEnv
    from typedrunner.errors import ConfigError

    model = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.BatchNorm1d(4))
    cfg = RunnerConfig.from_dict({"model": model, "sync_bn": "torch"})
    setup = DistSetup(torch.device("cpu"), LaunchEnv("pytorch", 0, 2, 0, "127.0.0.1", 29500))
    with pytest.raises(ConfigError) as info:
        wrap_model(model, cfg, setup)
    [problem] = info.value.problems
    assert problem.path == "sync_bn" and "needs CUDA" in problem.message


def test_auto_scale_lr_counts_every_rank() -> None:
    from typedrunner.build.parts import lr_scale
    from typedrunner.config import AutoScaleLR

    cfg = AutoScaleLR(enable=True, base_batch_size=64)
    loader = torch.utils.data.DataLoader(MyDataset(is_train=True, size=8), batch_size=16)
    assert lr_scale(cfg, loader, world_size=1) == 0.25
    assert lr_scale(cfg, loader, world_size=4) == 1.0


def test_diff_rank_seed_seeds_each_rank_apart_and_keeps_the_run_seed() -> None:
    from typedrunner.config import Randomness
    from typedrunner.engine.environment import set_randomness

    draws = []
    for rank in (0, 1):
        assert set_randomness(Randomness(seed=5, diff_rank_seed=True), rank, agree=lambda s: s) == 5
        assert torch.initial_seed() == 5 + rank
        draws.append(torch.rand(3))
    assert not torch.equal(draws[0], draws[1])
    set_randomness(Randomness(seed=5), 1, agree=lambda s: s)
    assert torch.initial_seed() == 5  # without diff_rank_seed every rank draws the same numbers
