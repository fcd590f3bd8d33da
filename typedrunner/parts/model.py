"""``BaseModel`` and ``BaseDataPreprocessor``: MMEngine's model base classes, typed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn

from typedrunner.parts.optim import NO_CONTEXT, AnyOptimWrapper

__all__ = ["BaseDataPreprocessor", "BaseModel", "Mode", "parse_losses", "run_forward"]

Mode = Literal["loss", "predict", "tensor"]


class BaseDataPreprocessor(nn.Module):
    """Moves a batch (tensors nested in tuples, lists and dicts) to the device of this module."""

    def __init__(self, non_blocking: bool = False) -> None:
        super().__init__()
        self.non_blocking = non_blocking
        self.register_buffer("_device_marker", torch.empty(0), persistent=False)

    @property
    def device(self) -> torch.device:
        marker = self._buffers["_device_marker"]  # registered in __init__: always a Tensor
        return marker.device if marker is not None else torch.device("cpu")

    def cast_data(self, data: Any) -> Any:
        """``data`` with every tensor moved to :attr:`device`."""
        marker = self._buffers["_device_marker"]  # self.device, read without a call per batch
        device = marker.device if marker is not None else torch.device("cpu")
        # A copy to a GPU never needs to block the host: the stream orders it before the forward
        # pass that reads it (and from the DataLoader's pinned memory it overlaps with compute).
        return _cast(data, device, self.non_blocking or device.type == "cuda")

    def forward(self, data: Any, training: bool = False) -> Any:
        return self.cast_data(data)


def _cast(data: Any, device: torch.device, non_blocking: bool) -> Any:
    if isinstance(data, Tensor):
        return data.to(device, non_blocking=non_blocking)
    kind = type(data)
    if kind is tuple or kind is list:  # the usual batch, checked first: no ABC instance check
        return kind(
            [
                x.to(device, non_blocking=non_blocking) if isinstance(x, Tensor) else _cast(x, device, non_blocking)
                for x in data
            ]
        )
    if isinstance(data, Mapping):
        return {key: _cast(value, device, non_blocking) for key, value in data.items()}
    if isinstance(data, tuple) and hasattr(data, "_fields"):  # namedtuple
        return kind(*(_cast(x, device, non_blocking) for x in data))
    if isinstance(data, (list, tuple)):
        return kind(_cast(x, device, non_blocking) for x in data)
    return data


def run_forward(model: nn.Module, data: Any, mode: Mode) -> Any:
    """The data-flow contract's call: ``model(**data)`` for a dict, ``model(*data)`` for a sequence."""
    kind = type(data)
    if kind is tuple or kind is list:  # the usual batch, checked first: no ABC instance check
        return model(*data, mode=mode)
    if isinstance(data, Mapping):
        return model(**data, mode=mode)
    if isinstance(data, (list, tuple)):
        return model(*data, mode=mode)
    return model(data, mode=mode)


def parse_losses(losses: Mapping[str, Tensor | Sequence[Tensor]]) -> tuple[Tensor, dict[str, Tensor]]:
    """Sum the entries whose key contains ``loss``; return it and detached values to log.

    Nothing is read back to the host here: the logged values stay on the device.
    """
    if type(losses) is dict and len(losses) == 1:  # the usual {'loss': scalar}: nothing to sum or average
        loss = losses.get("loss")
        if isinstance(loss, Tensor) and loss.dim() == 0:
            return loss, {"loss": loss.detach()}
    if not isinstance(losses, Mapping):
        raise TypeError(
            "the model's forward(mode='loss') must return a mapping of names to losses, e.g. "
            f"{{'loss': loss}}; it returned a {type(losses).__name__}"
        )
    log_vars: dict[str, Tensor] = {}
    for key, value in losses.items():
        if isinstance(value, Tensor):
            log_vars[key] = value if value.dim() == 0 else value.mean()
        else:
            log_vars[key] = torch.stack([v.mean() for v in value]).sum()
    loss_terms = [value for key, value in log_vars.items() if "loss" in key]
    if not loss_terms:
        raise KeyError(f"the model's loss mapping has no key containing 'loss' (keys: {sorted(losses)})")
    loss = loss_terms[0] if len(loss_terms) == 1 else torch.stack(loss_terms).sum()
    logged = {key: value.detach() for key, value in log_vars.items()}
    logged["loss"] = loss.detach()
    return loss, logged


class BaseModel(nn.Module):
    """MMEngine's ``BaseModel``: an ``nn.Module`` holding a ``data_preprocessor``.

    Subclasses implement ``forward(*inputs, mode)`` for ``mode`` in ``loss``, ``predict``, ``tensor``.
    """

    def __init__(self, data_preprocessor: nn.Module | None = None) -> None:
        super().__init__()
        self.data_preprocessor: nn.Module = (
            data_preprocessor if data_preprocessor is not None else BaseDataPreprocessor()
        )

    def train_step(self, data: Any, optim_wrapper: AnyOptimWrapper) -> dict[str, Tensor]:
        """Preprocess, compute the losses, update the parameters; return the detached losses."""
        batch = self.data_preprocessor(data, True)
        context = optim_wrapper.optim_context(self)
        if context is NO_CONTEXT:
            losses = run_forward(self, batch, "loss")
        else:
            with context:
                losses = run_forward(self, batch, "loss")
        loss, log_vars = parse_losses(losses)
        optim_wrapper.update_params(loss)
        return log_vars

    def val_step(self, data: Any) -> Any:
        """Preprocess and predict."""
        return run_forward(self, self.data_preprocessor(data, False), "predict")

    def test_step(self, data: Any) -> Any:
        """Preprocess and predict."""
        return run_forward(self, self.data_preprocessor(data, False), "predict")
