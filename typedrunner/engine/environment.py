"""The process environment a run sets up first: seeds, determinism, the device, cuDNN."""

from __future__ import annotations

import random
import sys
from collections.abc import Callable

import torch

from typedrunner.config.env import EnvCfg, Randomness

__all__ = ["select_device", "set_randomness"]


def set_randomness(rnd: Randomness, rank: int = 0, agree: Callable[[int], int] | None = None) -> int:
    """Seed python, numpy (if imported) and torch; return the run's seed (a random one when none is set).

    With several ranks, ``agree`` makes every rank take rank 0's seed; ``diff_rank_seed`` then seeds
    each process with ``seed + rank`` (the returned run seed, which orders the data, stays shared)."""
    seed = rnd.seed if rnd.seed is not None else random.SystemRandom().randrange(2**31)
    if agree is not None:
        seed = agree(seed)
    own = seed + rank if rnd.diff_rank_seed else seed
    random.seed(own)
    torch.manual_seed(own)
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed(own % 2**32)
    if rnd.deterministic:
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    return seed


def select_device(env: EnvCfg) -> torch.device:
    """CUDA when available, else the CPU; cuDNN's autotuner as configured."""
    torch.backends.cudnn.benchmark = env.cudnn_benchmark
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
