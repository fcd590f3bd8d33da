"""Which launcher started this process, read from the environment it set (no torch import).

``torchrun`` (``launcher: pytorch``) sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT``; ``srun`` (``launcher: slurm``) sets ``SLURM_PROCID``, ``SLURM_NTASKS``,
``SLURM_LOCALID`` and ``SLURM_NODELIST``, from which the master address (the first node) and port (from
the job id, as Lightning does, unless ``MASTER_PORT`` is set) follow.
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

    def describe(self) -> str:
        tool = "torchrun" if self.launcher == "pytorch" else "srun"
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


def detect() -> LaunchEnv | None:
    """torchrun's environment, else SLURM's (a task of ``srun``), else None (one plain process)."""
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
        job = env.get("SLURM_JOB_ID", "")
        port = int(env["MASTER_PORT"]) if "MASTER_PORT" in env else DEFAULT_PORT
        if "MASTER_PORT" not in env and job.isdigit():
            port = 15000 + int(job[-4:])  # one port per job: two jobs sharing a node do not collide
        return LaunchEnv(
            "slurm",
            int(env["SLURM_PROCID"]),
            int(env["SLURM_NTASKS"]),
            int(env.get("SLURM_LOCALID", "0")),
            env.get("MASTER_ADDR") or _first_host(env["SLURM_NODELIST"]),
            port,
        )
    return None
