"""``OptimWrapper``: backward, gradient accumulation, clipping, step, zero_grad; AMP through ``torch.amp``."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

from typedrunner.config.optim import ClipGrad, ParamwiseCfg

__all__ = ["NO_CONTEXT", "AmpOptimWrapper", "AnyOptimWrapper", "OptimWrapper", "OptimWrapperDict", "param_groups"]


NO_CONTEXT: contextlib.nullcontext[None] = contextlib.nullcontext()
"""What ``optim_context`` returns when the forward pass needs no context: a train step may skip the
``with`` (entering and leaving a ``nullcontext`` are two Python calls per iteration)."""


@contextlib.contextmanager
def _both(
    outer: contextlib.AbstractContextManager[object], inner: contextlib.AbstractContextManager[object]
) -> Iterator[None]:
    with outer, inner:
        yield


class OptimWrapper:
    """Wraps a torch optimizer; ``update_params(loss)`` is one training step.

    With ``accumulative_counts = k`` the loss is divided by ``k`` and the optimizer steps every ``k``
    calls (and at the last iteration of the run, dividing the final partial group by its size).
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        clip_grad: ClipGrad | None = None,
        accumulative_counts: int = 1,
        skip_nonfinite: bool = False,
    ) -> None:
        self.optimizer = optimizer
        self.skip_nonfinite = skip_nonfinite
        self.skipped = 0
        """Steps skipped because the loss was not finite (``nonfinite: skip``)."""
        self.clip_grad = clip_grad
        self.accumulative_counts = accumulative_counts
        self._params: list[Tensor] = [p for group in optimizer.param_groups for p in group["params"]]
        self.last_grad_norm: Tensor | None = None
        """The total gradient norm before clipping (on the device), when clipping by norm."""
        self.calls = 0
        """How many times update_params ran (the runner sets it on resume)."""
        self.max_calls = 0
        """The run's iterations, so the last partial accumulation group still steps (set by the runner)."""
        cls = type(self)
        self._plain = all(
            getattr(cls, name) is getattr(OptimWrapper, name) for name in ("backward", "step", "zero_grad")
        )
        """No subclass overrides backward, step or zero_grad: update_params calls torch directly."""

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.optimizer.param_groups

    def should_sync(self) -> bool:
        """Whether the next ``update_params`` steps the optimizer (so DDP must reduce the gradients)."""
        counts, upcoming = self.accumulative_counts, self.calls + 1
        return counts == 1 or upcoming % counts == 0 or upcoming == self.max_calls

    def optim_context(self, model: nn.Module) -> contextlib.AbstractContextManager[object]:
        """The context the forward pass runs in: DDP's ``no_sync`` on the steps that only accumulate
        gradients (MMEngine's rule; the backward of a forward run inside it is not reduced), else
        nothing (autocast too, for AMP). A model sharded by FSDP2 gets
        ``set_requires_gradient_sync(False)`` on those steps and ``True`` on the others."""
        if self.accumulative_counts > 1:
            # FSDP2 (``fully_shard``) has a switch instead of a context: set it for this step either way
            set_sync: Callable[[bool], None] | None = getattr(model, "set_requires_gradient_sync", None)
            if set_sync is not None:
                set_sync(self.should_sync())
                return NO_CONTEXT
            if not self.should_sync():
                no_sync: Callable[[], contextlib.AbstractContextManager[object]] | None = getattr(
                    model, "no_sync", None
                )
                if no_sync is not None:
                    return no_sync()
        return NO_CONTEXT  # stateless and reusable: no generator or context object per iteration

    def update_params(self, loss: Tensor) -> None:
        if self.skip_nonfinite and not bool(torch.isfinite(loss).all()):
            self.skipped += 1
            self.zero_grad()
            return
        counts = self.accumulative_counts
        if counts == 1 and self._plain:  # backward, step, zero_grad as written below, without their frames
            loss.backward()  # type: ignore[no-untyped-call]
            if self.clip_grad is not None:
                self._clip()
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            return
        if counts == 1:
            self.backward(loss)
            self.step()
            self.zero_grad()
            return
        self.calls += 1
        tail = self.max_calls % counts if self.max_calls else 0
        in_tail = tail and self.calls > self.max_calls - tail
        self.backward(loss / (tail if in_tail else counts))
        if self.calls % counts == 0 or self.calls == self.max_calls:
            self.step()
            self.zero_grad()

    def backward(self, loss: Tensor) -> None:
        loss.backward()  # type: ignore[no-untyped-call]

    def _clip(self) -> None:
        clip = self.clip_grad
        if clip is None:
            return
        if clip.type == "norm" and clip.max_norm is not None:
            self.last_grad_norm = torch.nn.utils.clip_grad_norm_(self._params, clip.max_norm, norm_type=clip.norm_type)
        elif clip.clip_value is not None:
            torch.nn.utils.clip_grad_value_(self._params, clip.clip_value)

    def step(self) -> None:
        if self.clip_grad is not None:
            self._clip()
        self.optimizer.step()

    def zero_grad(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)

    def get_lr(self) -> list[float]:
        return [float(group["lr"]) for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        return self.optimizer.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict({k: v for k, v in state.items() if k != "loss_scaler"})


class AmpOptimWrapper(OptimWrapper):
    """Mixed precision: the forward pass under ``torch.autocast``; float16 scales the loss with a
    ``torch.amp.GradScaler`` (its state is saved with the optimizer's), bfloat16 needs no scaling."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        device: torch.device,
        dtype: torch.dtype,
        loss_scale: str | float = "dynamic",
        clip_grad: ClipGrad | None = None,
        accumulative_counts: int = 1,
        skip_nonfinite: bool = False,
    ) -> None:
        super().__init__(optimizer, clip_grad, accumulative_counts, skip_nonfinite)
        self.device_type = device.type
        self.dtype = dtype
        self.scaler: torch.amp.GradScaler | None = None
        if dtype == torch.float16:
            fixed = loss_scale != "dynamic"
            self.scaler = torch.amp.GradScaler(
                device.type,
                init_scale=float(loss_scale) if fixed else 2.0**16,
                growth_interval=2**31 - 1 if fixed else 2000,
                growth_factor=1.0 + 1e-9 if fixed else 2.0,
                backoff_factor=1.0 - 1e-9 if fixed else 0.5,
            )

    def optim_context(self, model: nn.Module) -> contextlib.AbstractContextManager[object]:
        outer = super().optim_context(model)
        autocast = torch.autocast(self.device_type, dtype=self.dtype)
        return autocast if outer is NO_CONTEXT else _both(outer, autocast)

    def backward(self, loss: Tensor) -> None:
        if self.scaler is None:
            super().backward(loss)
        else:
            self.scaler.scale(loss).backward()  # type: ignore[no-untyped-call]

    def step(self) -> None:
        if self.scaler is None:
            super().step()
            return
        self.scaler.unscale_(self.optimizer)
        self._clip()
        self.scaler.step(self.optimizer)
        self.scaler.update()

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        if self.scaler is not None:
            state["loss_scaler"] = self.scaler.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if self.scaler is not None and "loss_scaler" in state:
            self.scaler.load_state_dict(state["loss_scaler"])


_NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm)


def param_groups(model: nn.Module, lr: float, weight_decay: float, cfg: ParamwiseCfg | None) -> list[dict[str, Any]]:
    """The optimizer's parameter groups: one per parameter with its multiplied lr and decay
    (MMEngine's ``DefaultOptimWrapperConstructor`` rules), or one group without ``paramwise_cfg``."""
    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    if cfg is None:
        return [{"params": [p for _, p in trainable]}]
    norm_params = {id(p) for m in model.modules() if isinstance(m, _NORMS) for p in m.parameters(recurse=False)}
    groups: list[dict[str, Any]] = []
    keys = sorted(cfg.custom_keys, key=len, reverse=True)
    for name, param in trainable:
        lr_mult, decay_mult = 1.0, 1.0
        key = next((k for k in keys if k in name), None)
        if key is not None:
            lr_mult, decay_mult = cfg.custom_keys[key].lr_mult, cfg.custom_keys[key].decay_mult
        elif id(param) in norm_params:
            decay_mult = cfg.norm_decay_mult
        elif name.endswith("bias"):
            lr_mult, decay_mult = cfg.bias_lr_mult, cfg.bias_decay_mult
        elif param.ndim == 1:
            decay_mult = cfg.flat_decay_mult
        groups.append({"params": [param], "lr": lr * lr_mult, "weight_decay": weight_decay * decay_mult, "name": name})
    return groups


class OptimWrapperDict:
    """Several optimizers, one per sub-module (MMEngine's ``OptimWrapperDict``): the model's own
    ``train_step(data, optim_wrapper)`` steps them, e.g. ``optim_wrapper['generator'].update_params(loss)``."""

    def __init__(self, wrappers: dict[str, OptimWrapper]) -> None:
        self.wrappers = wrappers
        self.last_grad_norm: Tensor | None = None

    def __getitem__(self, name: str) -> OptimWrapper:
        return self.wrappers[name]

    def items(self) -> list[tuple[str, OptimWrapper]]:
        return list(self.wrappers.items())

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return [group for wrapper in self.wrappers.values() for group in wrapper.param_groups]

    @property
    def max_calls(self) -> int:
        return max((w.max_calls for w in self.wrappers.values()), default=0)

    @max_calls.setter
    def max_calls(self, value: int) -> None:
        for wrapper in self.wrappers.values():
            wrapper.max_calls = value

    @property
    def calls(self) -> int:
        return max((w.calls for w in self.wrappers.values()), default=0)

    @calls.setter
    def calls(self, value: int) -> None:
        for wrapper in self.wrappers.values():
            wrapper.calls = value

    @contextlib.contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        raise TypeError(self._own_step_needed())
        yield  # pragma: no cover

    def update_params(self, loss: Tensor) -> None:
        raise TypeError(self._own_step_needed())

    @staticmethod
    def _own_step_needed() -> str:
        return (
            "optim_wrapper has several optimizers: the model must define train_step(data, optim_wrapper) "
            "and step each one (optim_wrapper['name'].update_params(loss))"
        )

    def get_lr(self) -> dict[str, list[float]]:
        return {name: wrapper.get_lr() for name, wrapper in self.wrappers.items()}

    def state_dict(self) -> dict[str, Any]:
        return {name: wrapper.state_dict() for name, wrapper in self.wrappers.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, wrapper in self.wrappers.items():
            wrapper.load_state_dict(state[name])


AnyOptimWrapper = OptimWrapper | OptimWrapperDict
