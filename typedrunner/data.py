"""Samplers and collate functions (MMEngine's ``DefaultSampler``, ``pseudo_collate``)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence, Sized
from typing import Any

import torch
from torch.utils.data import Sampler

__all__ = ["DefaultSampler", "pseudo_collate"]


class DefaultSampler(Sampler[int]):
    """Indices in order, or shuffled with ``seed + epoch`` (call ``set_epoch`` each epoch)."""

    def __init__(self, dataset: Sized, shuffle: bool = True, seed: int | None = None, round_up: bool = True) -> None:
        self.dataset = dataset
        self.shuffle = shuffle
        self.seed = int(torch.randint(0, 2**31, ()).item()) if seed is None else seed
        self.round_up = round_up
        self.epoch = 0

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        if self.shuffle:
            generator = torch.Generator()
            generator.manual_seed(self.seed + self.epoch)
            return iter(torch.randperm(n, generator=generator).tolist())
        return iter(range(n))

    def __len__(self) -> int:
        return len(self.dataset)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch


def pseudo_collate(data_batch: Sequence[Any]) -> Any:
    """Transpose a list of samples without stacking: a tuple of lists (or a dict of lists)."""
    first = data_batch[0]
    if isinstance(first, dict):
        return {key: [sample[key] for sample in data_batch] for key in first}
    if isinstance(first, (tuple, list)):
        return type(first)(list(items) for items in zip(*data_batch, strict=True))
    return list(data_batch)
