"""Sweeps whose jobs are DDP groups, through hydra-submitit-launcher (``tasks_per_node``).

The local executor (``hydra/launcher=submitit_local``) starts each job's tasks on this machine as
submitit does on SLURM, so the first test is a real sweep: 2 jobs x 2 tasks, CPU gloo, small data.
There is no SLURM here: the SLURM preset (``hydra/launcher=slurm_ddp``) is composed, checked against
the Hydra allowlist and rendered into its ``#SBATCH`` lines by submitit, and a sweep that forgets
``launcher=slurm`` is refused before anything is submitted.
"""

from __future__ import annotations

import json
import pickle
import random
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.utils import JobStatus
from omegaconf import open_dict

from tests import dist_support
from tests.helpers import CONF, REPO, SLURM_JOB, cli_env, explain
from typedrunner.app.compose import load_python_configs
from typedrunner.app.hydra_trust import untrusted_hydra_targets
from typedrunner.engine.launchers import detect

SMALL = [*dist_support.SMALL, "train_cfg.max_epochs=1"]
"""The seed experiment on 256 points (batch 64: 4 iterations per epoch in one process), one epoch."""
README_LOCAL = (
    "python -m typedrunner -m +experiment=mlp launcher=slurm hydra/launcher=submitit_local "
    "hydra.launcher.tasks_per_node=2 optim_wrapper.optimizer.lr=1e-3,1e-2"
)
README_SLURM = (
    "python -m typedrunner -m +experiment=mlp hydra/launcher=slurm_ddp launcher=slurm "
    "hydra.launcher.partition=gpu optim_wrapper.optimizer.lr=1e-3,1e-2"
)
"""The README's commands ("Training on several GPUs and nodes")."""
RANK_ZERO_FILES = {
    ".hydra",
    ".hydra/config.yaml",
    ".hydra/hydra.yaml",
    ".hydra/overrides.yaml",
    "config.json",
    "run.log",
    "scalars.jsonl",
    "summary.json",
    "epoch_1.pth",
    "last_checkpoint",
    "curves.png",
}


def test_the_readme_gives_the_commands_these_tests_run() -> None:
    readme = " ".join((REPO / "README.md").read_text(encoding="utf-8").replace("\\\n", " ").split())
    assert README_LOCAL in readme and README_SLURM in readme


def typedrunner(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "typedrunner", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def files_in(run_dir: Path) -> set[str]:
    return {str(p.relative_to(run_dir)) for p in run_dir.rglob("*")}


# ----------------------------------------------------------------------------------------------
# A submitit task's place in its job, from submitit's JobEnvironment
# ----------------------------------------------------------------------------------------------
def test_a_submitit_task_is_a_slurm_rank_of_its_job(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "SUBMITIT_EXECUTOR"):
        monkeypatch.delenv(key, raising=False)
    assert detect() is None  # one plain process
    # the local executor: every task on this machine, the job id is the job's controller's pid
    for key, value in {"EXECUTOR": "local", "LOCAL_GLOBALID": "1", "LOCAL_LOCALID": "1"}.items():
        monkeypatch.setenv(f"SUBMITIT_{key}", value)
    monkeypatch.setenv("SUBMITIT_LOCAL_NTASKS", "2")
    monkeypatch.setenv("SUBMITIT_LOCAL_JOB_ID", "3141592")
    env = detect()
    assert env is not None
    assert (env.launcher, env.rank, env.world_size, env.local_rank) == ("slurm", 1, 2, 1)
    assert (env.master_addr, env.master_port) == ("127.0.0.1", 15000 + 1592)
    assert env.describe() == "rank 1 of 2 started by submitit's local executor (job 3141592)"
    # on SLURM: submitit reads SLURM's variables; the master is the job's first host
    monkeypatch.setenv("SUBMITIT_EXECUTOR", "slurm")
    slurm = {"PROCID": "5", "NTASKS": "8", "LOCALID": "1", "JOB_NODELIST": "gpu[07-10],cpu3", "JOB_ID": "1234567"}
    for key, value in slurm.items():
        monkeypatch.setenv(f"SLURM_{key}", value)
    monkeypatch.setenv("SLURM_NODELIST", "gpu[07-10],cpu3")
    env = detect()
    assert env is not None
    assert (env.launcher, env.rank, env.world_size, env.local_rank) == ("slurm", 5, 8, 1)
    assert (env.master_addr, env.master_port) == ("gpu07", 15000 + 4567)
    assert "submitit's slurm executor" in env.describe()
    monkeypatch.setenv("MASTER_PORT", "29999")
    env = detect()
    assert env is not None and env.master_port == 29999  # MASTER_PORT wins, as under srun


# ----------------------------------------------------------------------------------------------
# A real sweep: submitit's local executor, 2 jobs of 2 tasks each
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """The README's local command on small data; the sweep directory's name holds ``${now:...}`` to the
    microsecond, so a task resolving its own moment would make another directory."""

    parent = tmp_path_factory.mktemp("submitit_ddp")
    env = cli_env()
    args = README_LOCAL.split()[3:]  # after `python -m typedrunner`
    result = typedrunner(
        [
            *args,
            *SMALL[1:],  # +experiment=mlp is in the README's command
            "hydra.launcher.timeout_min=4",  # submitit ends a job's tasks then, should one hang
            f"hydra.sweep.dir={parent}/${{now:%H%M%S%f}}",
        ],
        env,
    )
    assert result.returncode == 0, explain(result)
    sweeps = list(parent.iterdir())
    assert len(sweeps) == 1, sweeps  # one moment: the driver's, in every task of every job
    return sweeps[0], result


def task_results(sweep: Path) -> dict[str, list[Any]]:
    """Each submitit job's tasks' results (Hydra's ``JobReturn``, in task order), by job id."""
    jobs: dict[str, list[Any]] = {}
    for folder in sorted(p for p in (sweep / ".submitit").iterdir() if p.name.isdigit()):
        results = []
        for task in (0, 1):
            with (folder / f"{folder.name}_{task}_result.pkl").open("rb") as f:
                outcome, job_return = pickle.load(f)  # written by this test's own sweep
            assert outcome == "success", job_return
            results.append(job_return)
        assert not (folder / f"{folder.name}_2_result.pkl").exists()
        jobs[folder.name] = results
    return jobs


def test_each_job_is_one_ddp_run_of_two_ranks_in_its_own_directory(
    local_sweep: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    sweep, _ = local_sweep
    for job in ("0", "1"):
        assert files_in(sweep / job) == RANK_ZERO_FILES  # one run, rank 0's files only
        summary = json.loads((sweep / job / "summary.json").read_text())
        # 256 points in batches of 64: 4 iterations in one process, 2 when two ranks share each epoch
        assert summary["iters"] == 2 and summary["epochs"] == 1
        assert "rank=1" not in (sweep / job / "run.log").read_text()
    jobs = task_results(sweep)
    assert len(jobs) == 2
    for job_id, (rank0, rank1) in jobs.items():
        assert rank0.status is JobStatus.COMPLETED and rank1.status is JobStatus.COMPLETED
        # both tasks ran Hydra's job in the same directory, and finished the same gathered validation
        assert rank0.hydra_cfg.hydra.runtime.output_dir == rank1.hydra_cfg.hydra.runtime.output_dir
        assert rank0.return_value == rank1.return_value
        # rank 0 wrote .hydra/; rank 1 ran with hydra.output_subdir=null
        assert rank0.hydra_cfg.hydra.output_subdir == ".hydra" and rank1.hydra_cfg.hydra.output_subdir is None
        # rank 1 printed warnings only, tagged with its rank (the CPU's gloo instead of nccl)
        rank1_log = (sweep / ".submitit" / job_id / f"{job_id}_1_log.out").read_text()
        assert "using gloo rank=1" in rank1_log and "training device" not in rank1_log, rank1_log
        assert "training device=cpu" in (sweep / ".submitit" / job_id / f"{job_id}_0_log.out").read_text()
    assert {r[0].hydra_cfg.hydra.runtime.output_dir for r in jobs.values()} == {str(sweep / "0"), str(sweep / "1")}


def test_the_sweep_report_is_written_once_with_every_job(
    local_sweep: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    sweep, result = local_sweep
    assert result.stdout.count("sweep report (2 jobs)") == 1, result.stdout
    report = (sweep / "report.md").read_text()
    assert "2 jobs, 2 ok" in report
    for job in ("0", "1"):
        final = json.loads((sweep / job / "summary.json").read_text())["final_metrics"]["accuracy"]
        assert f"| {job} | ok |" in report and f"{final:.4g}" in report


# ----------------------------------------------------------------------------------------------
# SLURM: the preset composes and is allowed, submitit renders its sbatch lines; refusals before submission
# ----------------------------------------------------------------------------------------------
def test_the_slurm_ddp_preset_composes_is_allowed_and_renders_its_tasks_and_gpus() -> None:
    from hydra._internal.callbacks import Callbacks
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.plugins import Plugins
    from hydra.types import HydraContext
    from submitit.slurm.slurm import SlurmExecutor, _make_sbatch_string

    from typedrunner.app.cli import _task
    from typedrunner.app.compose import to_runner_config

    load_python_configs(CONF)
    overrides = [*README_SLURM.split()[4:-1], "hydra.mode=MULTIRUN", "hydra.sweep.dir=/tmp/never_written"]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
        context = HydraContext(config_loader=GlobalHydra.instance().config_loader(), callbacks=Callbacks(cfg))
        launcher: Any = Plugins.instance().instantiate_launcher(config=cfg, hydra_context=context, task_function=_task)
    assert untrusted_hydra_targets(cfg) == []
    assert type(launcher).__name__ == "SlurmLauncher"
    job = cfg.copy()
    with open_dict(job):
        job.pop("hydra")  # as the sweeper validates each point: Hydra's settings resolve per job,
        job.work_dir = None  # and so does the job's directory
    config, _ = to_runner_config(job)
    assert config.launcher == "slurm"

    names = SlurmExecutor._equivalence_dict()
    sbatch = {
        str(names.get(k, k)): v for k, v in launcher.params.items() if k not in ("submitit_folder", "max_num_timeout")
    }
    sbatch["mem"] = f"{sbatch['mem']}GB"
    script = _make_sbatch_string(command="python -m submitit.core._submit", folder="/tmp/never", map_count=2, **sbatch)
    for line in ("--ntasks-per-node=4", "--gpus-per-node=4", "--nodes=1", "--partition=gpu"):
        assert f"#SBATCH {line}" in script, script


@pytest.mark.parametrize(
    ("launcher", "options", "message"),
    [
        ("none", ["hydra/launcher=slurm_ddp"], "starts 4 tasks per job, each training alone"),
        ("pytorch", ["hydra/launcher=submitit_local", "hydra.launcher.tasks_per_node=2"], "'pytorch' is not how"),
    ],
)
def test_a_multi_task_sweep_without_launcher_slurm_is_refused_before_submission(
    tmp_path: Path, subprocess_env: dict[str, str], launcher: str, options: list[str], message: str
) -> None:
    """Refused by the sweeper (exit 2) before the launcher runs: no sbatch is needed, no job starts."""
    sweep = tmp_path / "sweep"
    result = typedrunner(
        [
            "-m",
            *SMALL,
            *options,
            f"launcher={launcher}",
            "optim_wrapper.optimizer.lr=1e-3,1e-2",
            f"hydra.sweep.dir={sweep}",
        ],
        subprocess_env,
    )
    assert result.returncode == 2, explain(result)
    assert "sweep refused before launch (2 points)" in result.stderr and message in result.stderr, result.stderr
    assert "add launcher=slurm" in result.stderr
    assert not (sweep / ".submitit").exists() and not (sweep / "0").exists()


def free_job_port() -> int:
    """A free port that ``15000 + the last four digits of the job id`` names (the master's port)."""
    for port in random.sample(range(15000, 25000), 200):
        with socket.socket() as s:
            try:
                s.bind(("localhost", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port in 15000-24999")


def test_a_pickled_slurm_ddp_job_runs_as_two_slurm_tasks_of_one_ddp_group(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    """What a node does with the preset's job, without a cluster: the job is composed and pickled as
    ``SlurmLauncher.launch`` hands it to submitit, then run as ``srun`` runs it, by two
    ``python -m submitit.core._submit`` processes given the environment SLURM sets for 2 tasks."""
    sweep = tmp_path / "sweep"
    extra = ["launcher=slurm", "train_dataloader.dataset.size=256", "val_dataloader.dataset.size=64"]
    code = f"from tests.helpers import pickle_slurm_job; pickle_slurm_job({str(sweep)!r}, 'slurm_ddp', {extra!r})"
    submitted = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=subprocess_env, capture_output=True, text=True, timeout=120
    )
    assert submitted.returncode == 0, explain(submitted)
    assert "#SBATCH --ntasks-per-node=4" in submitted.stdout and "#SBATCH --gpus-per-node=4" in submitted.stdout

    port = free_job_port()
    node = subprocess_env | {"SUBMITIT_EXECUTOR": "slurm", "SLURM_JOB_ID": str(port - 15000)}
    node |= {"SLURM_ARRAY_JOB_ID": SLURM_JOB, "SLURM_ARRAY_TASK_ID": "0", "SLURM_NTASKS": "2", "SLURM_NODEID": "0"}
    node |= {"SLURM_JOB_NUM_NODES": "1", "SLURM_JOB_NODELIST": "localhost"}
    tasks = [
        subprocess.Popen(
            [sys.executable, "-m", "submitit.core._submit", str(sweep / ".submitit" / "%j")],
            cwd=REPO,
            env=node | {"SLURM_PROCID": str(rank), "SLURM_LOCALID": str(rank)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in (0, 1)
    ]
    outputs = [task.communicate(timeout=180)[0] for task in tasks]
    assert [task.returncode for task in tasks] == [0, 0], outputs

    folder = sweep / ".submitit" / f"{SLURM_JOB}_0"
    returns = []
    for rank in (0, 1):
        with (folder / f"{SLURM_JOB}_0_{rank}_result.pkl").open("rb") as f:
            outcome, job_return = pickle.load(f)  # written by this test's own job
        assert outcome == "success" and job_return.status is JobStatus.COMPLETED, job_return
        returns.append(job_return)
    assert returns[0].hydra_cfg.hydra.output_subdir == ".hydra" and returns[1].hydra_cfg.hydra.output_subdir is None
    assert files_in(sweep / "0") == RANK_ZERO_FILES
    assert json.loads((sweep / "0" / "summary.json").read_text())["iters"] == 2  # 256 / (2 ranks x 64)
    assert returns[0].return_value == returns[1].return_value
    assert "using gloo rank=1" in outputs[1] and "training device=cpu" in outputs[0], outputs
