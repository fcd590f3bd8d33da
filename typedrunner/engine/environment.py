"""The process environment a run sets up first: seeds, determinism, the device, cuDNN."""

from __future__ import annotations

import random
import sys

import torch

from typedrunner.config.env import EnvCfg, Randomness

__all__ = ["select_device", "set_randomness"]


def set_randomness(rnd: Randomness) -> int:
    """Seed python, numpy (if imported) and torch; return the seed (a random one when none is set)."""
    seed = rnd.seed if rnd.seed is not None else random.SystemRandom().randrange(2**31)
    random.seed(seed)
    torch.manual_seed(seed)
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed(seed)
    if rnd.deterministic:
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    return seed


def select_device(env: EnvCfg) -> torch.device:
    """CUDA when available, else the CPU; cuDNN's autotuner as configured."""
    torch.backends.cudnn.benchmark = env.cudnn_benchmark
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
