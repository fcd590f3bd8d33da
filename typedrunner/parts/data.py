"""Samplers and collate functions (MMEngine's ``DefaultSampler``, ``pseudo_collate``)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence, Sized
from typing import Any

import torch
from torch.utils.data import Sampler

from typedrunner.parts import distributed

__all__ = ["DefaultSampler", "pseudo_collate", "start_pass"]


class DefaultSampler(Sampler[int]):
    """Indices in order, or shuffled with ``seed + epoch`` (call ``set_epoch`` each epoch); with several
    ranks, each rank takes every ``world_size``-th index of that order, starting at its rank (MMEngine's
    ``DefaultSampler``).

    The order of an epoch depends only on ``seed`` and the epoch, so a resumed run sees the same
    batches; ``skip(n)`` makes the next pass start after its first ``n`` samples (mid-epoch resume)
    without loading them. ``round_up``: the order is padded with its own first indices so that every
    rank gets the same number of samples (needed to train: every rank takes the same steps);
    evaluation passes call ``pad(False)`` and visit each sample once.
    """

    def __init__(self, dataset: Sized, shuffle: bool = True, seed: int | None = None, round_up: bool = True) -> None:
        self.dataset = dataset
        self.shuffle = shuffle
        self.seed = int(torch.randint(0, 2**31, ()).item()) if seed is None else seed
        self.round_up = round_up
        self.rank = distributed.rank()
        self.world_size = distributed.world_size()
        self.epoch = 0
        self._skip = 0

    def _padded(self) -> bool:
        return self.round_up and self.world_size > 1

    @property
    def num_samples(self) -> int:
        """Samples this rank visits in one pass."""
        n = len(self.dataset)
        if self._padded():
            return math.ceil(n / self.world_size)
        return len(range(self.rank, n, self.world_size))

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        skip, self._skip = self._skip, 0
        if self.shuffle:
            generator = torch.Generator()
            generator.manual_seed(self.seed + self.epoch)
            indices = torch.randperm(n, generator=generator).tolist()
        else:
            indices = list(range(n))
        if self.world_size > 1:
            if self._padded() and n:
                total = self.num_samples * self.world_size
                indices = (indices * (total // n + 1))[:total]
            indices = indices[self.rank :: self.world_size]
        return iter(indices[skip:])

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def pad(self, enabled: bool) -> None:
        """Whether passes are padded to the same length on every rank (``round_up``)."""
        self.round_up = enabled

    def skip(self, samples: int) -> None:
        """Start the next pass after its first ``samples`` samples."""
        self._skip = samples


def pseudo_collate(data_batch: Sequence[Any]) -> Any:
    """Transpose a list of samples without stacking: a tuple of lists (or a dict of lists)."""
    first = data_batch[0]
    if isinstance(first, dict):
        return {key: [sample[key] for sample in data_batch] for key in first}
    if isinstance(first, (tuple, list)):
        return type(first)(list(items) for items in zip(*data_batch, strict=True))
    return list(data_batch)


def start_pass(loader: Any, seed: int, epoch: int, skip_batches: int = 0) -> None:
    """Prepare a dataloader for a pass: its order and its workers' seeds depend only on (seed, epoch).

    Loaders built by typedrunner carry their own generator, reseeded here, so creating an iterator
    never draws from the global RNG (a resumed run and an uninterrupted one see the same randomness);
    ``skip_batches`` starts the pass after that many batches without loading them.
    """
    generator = getattr(loader, "generator", None)
    if isinstance(generator, torch.Generator):  # each rank's workers get their own seeds (rank 0: as alone)
        generator.manual_seed(seed * 1_000_003 + epoch + 7_919 * distributed.rank())
    sampler = getattr(loader, "sampler", None)
    if isinstance(sampler, DefaultSampler):
        sampler.set_epoch(epoch)
        if skip_batches:
            sampler.skip(skip_batches * int(getattr(loader, "batch_size", 1) or 1))
    elif skip_batches:
        raise ValueError(
            f"cannot resume inside an epoch with a {type(sampler).__name__}: only DefaultSampler can start "
            "a pass mid-way; save checkpoints at epoch ends (by_epoch: true) or use DefaultSampler"
        )
