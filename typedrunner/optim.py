"""``OptimWrapper``: backward, optional gradient clipping, step, zero_grad."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from typedrunner.config.optim import ClipGrad

__all__ = ["OptimWrapper"]


class OptimWrapper:
    """Wraps a torch optimizer; ``update_params(loss)`` is one training step."""

    def __init__(self, optimizer: torch.optim.Optimizer, clip_grad: ClipGrad | None = None) -> None:
        self.optimizer = optimizer
        self.clip_grad = clip_grad
        self._params: list[Tensor] = [p for group in optimizer.param_groups for p in group["params"]]
        self.last_grad_norm: Tensor | None = None
        """The total gradient norm before clipping (on the device), when clipping by norm."""

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.optimizer.param_groups

    def update_params(self, loss: Tensor) -> None:
        self.backward(loss)
        self.step()
        self.zero_grad()

    def backward(self, loss: Tensor) -> None:
        loss.backward()  # type: ignore[no-untyped-call]

    def step(self) -> None:
        clip = self.clip_grad
        if clip is not None:
            if clip.type == "norm" and clip.max_norm is not None:
                self.last_grad_norm = torch.nn.utils.clip_grad_norm_(
                    self._params, clip.max_norm, norm_type=clip.norm_type
                )
            elif clip.clip_value is not None:
                torch.nn.utils.clip_grad_value_(self._params, clip.clip_value)
        self.optimizer.step()

    def zero_grad(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)

    def get_lr(self) -> list[float]:
        return [float(group["lr"]) for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        return self.optimizer.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state)
