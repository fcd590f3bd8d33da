"""Which launcher started this process, read from the environment it set (no torch import).

``torchrun`` (``launcher: pytorch``) sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT``; ``srun`` (``launcher: slurm``) sets ``SLURM_PROCID``, ``SLURM_NTASKS``,
``SLURM_LOCALID`` and ``SLURM_NODELIST``, from which the master address (the first node) and port (from
the job id, as Lightning does, unless ``MASTER_PORT`` is set) follow. A task of a submitit job (a
Hydra sweep through hydra-submitit-launcher with ``tasks_per_node`` > 1, on SLURM or on this machine)
is ``launcher: slurm`` too: submitit's ``JobEnvironment`` gives its rank, its job's task count and
hosts, and its job id (submitit is imported only when submitit started the process).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Literal

__all__ = ["LaunchEnv", "detect"]

DEFAULT_PORT = 29500
"""The master port when SLURM gives no job id and ``MASTER_PORT`` is unset."""


@dataclass(frozen=True)
class LaunchEnv:
    """This process's place in a multi-process run, as its launcher described it."""

    launcher: Literal["pytorch", "slurm"]
    rank: int
    world_size: int
    local_rank: int
    master_addr: str
    master_port: int
    started_by: str = ""
    """What started it, in words, when not the launcher's usual tool (torchrun, srun)."""

    def describe(self) -> str:
        tool = self.started_by or ("torchrun" if self.launcher == "pytorch" else "srun")
        return f"rank {self.rank} of {self.world_size} started by {tool}"


def _first_host(nodelist: str) -> str:
    """The first host of a SLURM node list: ``scontrol show hostnames`` when SLURM's tools are here,
    else read from the list (``node[01-04],gpu7`` -> ``node01``)."""
    scontrol = shutil.which("scontrol")
    if scontrol is not None:
        out = subprocess.run(
            [scontrol, "show", "hostnames", nodelist], capture_output=True, text=True, check=False, timeout=30
        )
        hosts = out.stdout.split()
        if out.returncode == 0 and hosts:
            return hosts[0]
    first = re.match(r"([^,\[]+)(?:\[([^\]]+)\])?", nodelist.strip())
    if first is None:
        return nodelist
    prefix, ranges = first.group(1), first.group(2)
    return prefix + ranges.split(",")[0].split("-")[0] if ranges else prefix


def _job_port(job_id: str) -> int:
    """``MASTER_PORT``, else 15000 + the job id's last four digits (two jobs sharing a node do not
    collide), else :data:`DEFAULT_PORT`."""
    if "MASTER_PORT" in os.environ:
        return int(os.environ["MASTER_PORT"])
    return 15000 + int(job_id[-4:]) if job_id.isdigit() else DEFAULT_PORT


def _submitit() -> LaunchEnv | None:
    """A task of a submitit job: hydra-submitit-launcher's ``submitit_slurm`` (one SLURM job of
    ``tasks_per_node`` x ``nodes`` tasks per sweep job) or ``submitit_local`` (the same tasks, started
    on this machine). None outside submitit, without importing it."""
    executor = os.environ.get("SUBMITIT_EXECUTOR")
    if not executor:
        return None
    try:
        import submitit

        job = submitit.JobEnvironment()
    except (ImportError, RuntimeError):  # no submitit here, or an executor it does not know
        return None
    local = job.cluster == "local"  # the local executor runs every task of a job on this machine
    master = os.environ.get("MASTER_ADDR") or ("127.0.0.1" if local else job.hostnames[0])
    return LaunchEnv(
        "slurm",
        job.global_rank,
        job.num_tasks,
        job.local_rank,
        master,
        _job_port(job.raw_job_id),
        f"submitit's {job.cluster} executor (job {job.job_id})",
    )


def detect() -> LaunchEnv | None:
    """A submitit job's task, else torchrun's environment, else SLURM's (a task of ``srun``), else None
    (one plain process)."""
    submitted = _submitit()
    if submitted is not None:
        return submitted
    env = os.environ
    if all(k in env for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")):
        return LaunchEnv(
            "pytorch",
            int(env["RANK"]),
            int(env["WORLD_SIZE"]),
            int(env.get("LOCAL_RANK", "0")),
            env["MASTER_ADDR"],
            int(env["MASTER_PORT"]),
        )
    if all(k in env for k in ("SLURM_PROCID", "SLURM_NTASKS", "SLURM_NODELIST")):
        return LaunchEnv(
            "slurm",
            int(env["SLURM_PROCID"]),
            int(env["SLURM_NTASKS"]),
            int(env.get("SLURM_LOCALID", "0")),
            env.get("MASTER_ADDR") or _first_host(env["SLURM_NODELIST"]),
            _job_port(env.get("SLURM_JOB_ID", "")),
        )
    return None
