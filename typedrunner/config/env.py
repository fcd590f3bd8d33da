"""``env_cfg``, ``launcher``, ``randomness``, ``compile`` and ``auto_scale_lr``."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from typedrunner.config.base import ConfigModel
from typedrunner.errors import TypedRunnerWarning

__all__ = ["AutoScaleLR", "CompileCfg", "DistCfg", "EnvCfg", "Launcher", "MpCfg", "Randomness"]


class MpCfg(ConfigModel):
    """Multiprocessing settings."""

    mp_start_method: Literal["fork", "spawn", "forkserver"] | None = None
    """Start method of worker processes (None: the platform default)."""
    opencv_num_threads: int | None = Field(default=None, ge=0)
    """OpenCV threads per process (only if OpenCV is installed)."""


class DistCfg(ConfigModel):
    """Distributed settings."""

    backend: Literal["nccl", "gloo", "mpi", "cpu:gloo,cuda:nccl"] | None = None
    """``torch.distributed`` backend (None: ``nccl`` on CUDA, ``gloo`` on the CPU; ``nccl`` without CUDA
    falls back to ``gloo`` with a warning)."""
    timeout: int = Field(default=1800, ge=1)
    """Seconds to wait for collective operations."""


class EnvCfg(ConfigModel):
    """``env_cfg``: the process environment."""

    cudnn_benchmark: bool = False
    """Let cuDNN pick the fastest kernels (faster, not bit-reproducible)."""
    mp_cfg: MpCfg = Field(default_factory=MpCfg)
    """Multiprocessing settings."""
    dist_cfg: DistCfg = Field(default_factory=DistCfg)
    """Distributed settings."""

    @model_validator(mode="before")
    @classmethod
    def _flat_backend(cls, data: Any) -> Any:
        """The tutorial writes ``env_cfg.backend``; MMEngine silently ignores it. We honour it."""
        if (
            isinstance(data, Mapping)
            and "backend" in data
            and isinstance(data.get("dist_cfg", {}), (Mapping, type(None)))
        ):
            data = dict(data)
            backend = data.pop("backend")
            dist = dict(data.get("dist_cfg") or {})
            if "backend" in dist and dist["backend"] != backend:
                raise ValueError(
                    f"env_cfg.backend={backend!r} and env_cfg.dist_cfg.backend={dist['backend']!r} "
                    "disagree; keep only env_cfg.dist_cfg.backend"
                )
            dist["backend"] = backend
            data["dist_cfg"] = dist
            warnings.warn(
                "env_cfg.backend is read as env_cfg.dist_cfg.backend (its canonical path); "
                "write env_cfg: {dist_cfg: {backend: ...}}",
                TypedRunnerWarning,
                stacklevel=2,
            )
        return data


def _no_mpi(value: str) -> str:
    if value == "mpi":
        raise ValueError("not supported yet: launcher mpi; use pytorch (torchrun) or slurm (srun)")
    return value


Launcher = Annotated[
    Literal["none", "pytorch", "slurm", "mpi"],
    AfterValidator(_no_mpi),
]


class Randomness(ConfigModel):
    """``randomness``: seeding and determinism."""

    seed: int | None = Field(default=None, ge=0, lt=2**32)
    """Seed for python, numpy and torch (None: a random seed, logged)."""
    deterministic: bool = False
    """Use deterministic algorithms only (``torch.use_deterministic_algorithms``)."""
    diff_rank_seed: bool = False
    """Give each distributed rank a different seed."""


class AutoScaleLR(ConfigModel):
    """``auto_scale_lr``: scale the learning rate with the total batch size."""

    enable: bool = False
    """Multiply the lr by ``batch_size * world_size / base_batch_size``."""
    base_batch_size: int | None = Field(default=None, ge=1)
    """The total batch size the configured lr was tuned for."""

    @model_validator(mode="after")
    def _needs_base(self) -> AutoScaleLR:
        if self.enable and self.base_batch_size is None:
            raise ValueError("auto_scale_lr.enable needs base_batch_size (the batch size the lr was tuned for)")
        return self


class CompileCfg(ConfigModel):
    """``compile``: ``torch.compile`` options (``compile: true`` takes the defaults)."""

    backend: str = "inductor"
    """Compiler backend (``inductor``; ``eager`` or ``aot_eager`` to debug)."""
    mode: Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"] | None = None
    """Optimisation mode (None: the backend's default)."""
    fullgraph: bool = False
    """Fail on graph breaks instead of falling back to Python."""
    dynamic: bool | None = None
    """Compile for dynamic shapes (None: decide from the shapes seen)."""


Compile = bool | CompileCfg
