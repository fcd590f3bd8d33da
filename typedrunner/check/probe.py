"""The contract probe: one real batch through dataloader -> preprocessor -> model -> metrics.

It runs before the first optimizer step and leaves no trace: every RNG stream, the model's parameters
and buffers, its train/eval mode and the dataloaders' iteration are as they were (the batch is taken
from the sampler and dataset directly, without starting an iterator or workers). Findings are data:
a list of ``Problem``s, each naming the stage, the user function and the batch's structure.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import itertools
import math
import random
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from typedrunner.errors import Problem
from typedrunner.parts.evaluator import evaluate_metric
from typedrunner.parts.model import Mode, run_forward

__all__ = ["ProbeResult", "first_batch", "preserved_state", "probe_eval", "probe_train", "summarize"]


class ProbeResult:
    """What the probe found: problems, and the metric names the evaluator really returns."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.metric_names: dict[str, list[str]] = {}
        self.batches: dict[str, str] = {}
        """Per stage, the structure of the first batch (``tuple(Tensor[64, 2] float32, ...)``)."""
        self.stage = "probe"

    def add(self, path: str, message: str, value: Any = None) -> None:
        self.problems.append(Problem(path, message, value, stage=self.stage))


# -- describing data ---------------------------------------------------------------------------
def summarize(value: Any, depth: int = 0) -> str:
    """``tuple(Tensor[64, 2] float64, Tensor[64] int64)``: the structure of a batch, on one line."""
    if isinstance(value, Tensor):
        shape = ", ".join(str(s) for s in value.shape)
        dtype = str(value.dtype).removeprefix("torch.")
        device = "" if value.device.type == "cpu" else f" {value.device}"
        return f"Tensor[{shape}] {dtype}{device}"
    if depth > 3:
        return type(value).__name__
    if isinstance(value, Mapping):
        inner = ", ".join(f"{k}: {summarize(v, depth + 1)}" for k, v in itertools.islice(value.items(), 8))
        return f"dict({inner}{', ...' if len(value) > 8 else ''})"
    if isinstance(value, (list, tuple)):
        inner = ", ".join(summarize(v, depth + 1) for v in value[:8])
        return f"{type(value).__name__}({inner}{', ...' if len(value) > 8 else ''})"
    if isinstance(value, (int, float, str, bool)) or value is None:
        return f"{type(value).__name__}"
    return type(value).__name__


def _function_name(fn: Any) -> str:
    owner = getattr(fn, "__self__", None)
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
    if owner is not None and "." not in name:
        return f"{type(owner).__qualname__}.{name}"
    return str(name)


def _exception_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"


# -- state that must survive the probe --------------------------------------------------------
@contextlib.contextmanager
def preserved_state(*modules: nn.Module) -> Iterator[None]:
    """Restore every RNG stream and the modules' parameters, buffers and modes on exit."""
    python_state = random.getstate()
    numpy = sys.modules.get("numpy")
    numpy_state = numpy.random.get_state() if numpy is not None else None
    torch_state = torch.get_rng_state()
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    # The probe never steps an optimizer and takes gradients with autograd.grad (``.grad`` untouched),
    # so parameters cannot change; buffers can (BatchNorm statistics in train mode): copy only those.
    buffers = {id(b): (b, b.detach().clone()) for m in modules for b in m.buffers()}
    modes = {id(sub): (sub, sub.training) for m in modules for sub in m.modules()}
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, saved in buffers.values():
                buffer.copy_(saved)
        for sub, training in modes.values():
            sub.training = training
        random.setstate(python_state)
        if numpy is not None and numpy_state is not None:
            numpy.random.set_state(numpy_state)
        torch.set_rng_state(torch_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)


def first_batch(loader: Any, path: str, result: ProbeResult) -> tuple[bool, Any]:
    """The loader's first batch, built from its batch sampler and dataset without an iterator."""
    dataset = getattr(loader, "dataset", None)
    batch_sampler = getattr(loader, "batch_sampler", None)
    collate = getattr(loader, "collate_fn", None)
    if dataset is None or batch_sampler is None or collate is None:
        try:
            return True, next(iter(loader))
        except Exception as e:
            result.add(path, f"reading the first batch failed: {_exception_line(e)}")
            return False, None
    try:
        indices = next(iter(batch_sampler))
    except StopIteration:
        result.add(
            f"{path}.dataset",
            "the dataloader yields no batch (empty dataset, or drop_last with fewer samples than batch_size)",
        )
        return False, None
    except Exception as e:
        result.add(f"{path}.sampler", f"the sampler failed: {_exception_line(e)}")
        return False, None
    samples = []
    for index in indices:
        try:
            samples.append(dataset[index])
        except Exception as e:
            result.add(f"{path}.dataset", f"{type(dataset).__qualname__}[{index}] failed: {_exception_line(e)}")
            return False, None
    try:
        return True, collate(samples)
    except Exception as e:
        result.add(
            f"{path}.collate_fn",
            f"{_function_name(getattr(collate, 'func', collate))} failed on samples of structure "
            f"{summarize(samples[0])}: {_exception_line(e)}",
        )
        return False, None


# -- the model side -----------------------------------------------------------------------------
def _bind(model: nn.Module, batch: Any, mode: Mode, path: str, result: ProbeResult) -> bool:
    """Check that the batch binds to ``model.forward`` as the contract unpacks it."""
    forward = model.forward
    try:
        signature = inspect.signature(forward)
    except (TypeError, ValueError):
        return True
    try:
        if isinstance(batch, Mapping):
            signature.bind(**batch, mode=mode)
        elif isinstance(batch, (list, tuple)):
            signature.bind(*batch, mode=mode)
        else:
            signature.bind(batch, mode=mode)
    except TypeError as e:
        params = [p for p in signature.parameters if p != "mode"]
        if isinstance(batch, Mapping):
            got = f"a dict with keys {sorted(batch)}, passed as keyword arguments"
        elif isinstance(batch, (list, tuple)):
            got = f"a {type(batch).__name__} of {len(batch)} items, passed as positional arguments"
        else:
            got = f"one {type(batch).__name__}, passed as one argument"
        result.add(
            path,
            f"the batch does not fit {_function_name(forward)}({', '.join(params)}, mode): it is {got} "
            f"({e}); batch: {summarize(batch)}",
        )
        return False
    return True


def _floats(value: Any) -> Iterator[Tensor]:
    if isinstance(value, Tensor):
        if value.is_floating_point():
            yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _floats(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _floats(v)


def _dtype_device(model: nn.Module, batch: Any, path: str, result: ProbeResult) -> bool:
    param = next(model.parameters(), None)
    if param is None:
        return True
    ok = True
    for tensor in _floats(batch):
        if tensor.dtype != param.dtype and tensor.dtype in (
            torch.float64,
            torch.float32,
            torch.float16,
            torch.bfloat16,
        ):
            result.add(
                path,
                f"the batch holds {str(tensor.dtype).removeprefix('torch.')} data but the model's weights are "
                f"{str(param.dtype).removeprefix('torch.')}: convert the data in the dataset or the data "
                f"preprocessor (e.g. tensor.float()); batch: {summarize(batch)}",
            )
            ok = False
            break
    for tensor in _floats(batch):
        if tensor.device != param.device:
            result.add(
                path,
                f"the batch is on {tensor.device} but the model is on {param.device}: the data preprocessor "
                "should move it (the default one does)",
            )
            return False
    return ok


def _call(
    fn: Any, args: Sequence[Any], kwargs: Mapping[str, Any], stage: str, path: str, batch: Any, result: ProbeResult
) -> tuple[bool, Any]:
    try:
        return True, fn(*args, **kwargs)
    except Exception as e:
        result.add(
            path,
            f"{stage}: {_function_name(fn)} raised {_exception_line(e)}; batch: {summarize(batch)}" + _hint(e),
        )
        return False, None


def _hint(error: BaseException) -> str:
    text = str(error)
    if "out of bounds" in text or ("Target" in text and "out of" in text):
        return " (a label is outside [0, number of classes): check the labels and the classifier's width)"
    if "expected scalar type Long" in text or "target dtype to be Long" in text or "expected Long" in text:
        return " (class labels must be int64 (torch.long) for cross-entropy)"
    if "shapes cannot be multiplied" in text or "size mismatch" in text:
        return " (a layer's input width does not match the data: check the model's first layer)"
    if "same dtype" in text or "expected scalar type" in text:
        return " (the data's dtype does not match the weights')"
    return ""


def probe_train(model: nn.Module, preprocessor: nn.Module, loader: Any, result: ProbeResult) -> None:
    """Train side: batch -> preprocessor -> ``model(..., mode='loss')`` -> losses reach the parameters."""
    result.stage = "probe: train"
    ok, batch = first_batch(loader, "train_dataloader", result)
    if not ok:
        return
    result.batches["train"] = summarize(batch)
    ok, data = _call(preprocessor, (batch, True), {}, "data preprocessor", "data_preprocessor", batch, result)
    if not ok:
        return
    if not _bind(model, data, "loss", "model", result) or not _dtype_device(model, data, "train_dataloader", result):
        return
    model.train()
    ok, losses = _call(_forward_fn(model), (data, "loss"), {}, "mode='loss'", "model", data, result)
    if not ok:
        return
    _check_losses(model, losses, data, result)


def _forward_fn(model: nn.Module) -> Any:
    def forward(data: Any, mode: Mode) -> Any:
        return run_forward(model, data, mode)

    forward.__qualname__ = f"{type(model).__qualname__}.forward"
    return forward


def _check_losses(model: nn.Module, losses: Any, batch: Any, result: ProbeResult) -> None:
    name = f"{type(model).__qualname__}.forward(mode='loss')"
    if not isinstance(losses, Mapping):
        result.add("model", f"{name} must return a mapping like {{'loss': tensor}}, not {summarize(losses)}")
        return
    loss_keys = [k for k in losses if "loss" in str(k)]
    if not loss_keys:
        result.add(
            "model",
            f"{name} returned keys {sorted(map(str, losses))}, none containing 'loss': nothing would be optimised",
        )
        return
    terms: list[Tensor] = []
    for key in loss_keys:
        values = losses[key] if isinstance(losses[key], (list, tuple)) else [losses[key]]
        for value in values:
            if not isinstance(value, Tensor):
                result.add("model", f"{name}[{key!r}] is a {type(value).__name__}, not a tensor")
                continue
            if value.numel() != 1:
                result.add(
                    "model", f"{name}[{key!r}] has shape {list(value.shape)}, not a scalar: reduce it (e.g. .mean())"
                )
                continue
            if not bool(torch.isfinite(value.detach()).all()):
                result.add(
                    "model",
                    f"{name}[{key!r}] is {value.item()} on the first batch (not finite); batch: {summarize(batch)}",
                )
                continue
            terms.append(value)
    if not terms:
        return
    params = [p for p in model.parameters() if p.requires_grad]
    dtensor = sys.modules.get("torch.distributed.tensor")  # imported by FSDP2 (0.7 s): not to find out
    if dtensor is not None and any(isinstance(p, dtensor.DTensor) for p in params):
        # FSDP2: the forward ran on gathered copies of these shards, which the graph holds instead
        # (FSDP's backward hands their gradients to the shards); autograd.grad cannot see through it
        return
    total = torch.stack([t.reshape(()) for t in terms]).sum()
    if not total.requires_grad:
        result.add(
            "model",
            f"{name}: the loss does not depend on any trainable parameter (no autograd graph: a .detach(), .item() or torch.no_grad?)",
        )
        return
    grads = torch.autograd.grad(total, params, allow_unused=True)
    if all(g is None for g in grads):
        result.add("model", f"{name}: the loss reaches none of the model's trainable parameters through autograd")


def probe_eval(
    stage: str, model: nn.Module, preprocessor: nn.Module, loader: Any, metrics: Sequence[Any], result: ProbeResult
) -> None:
    """Val/test side: batch -> ``model(..., mode='predict')`` -> each metric's process and compute_metrics."""
    path = f"{stage}_dataloader"
    result.stage = f"probe: {stage}"
    ok, batch = first_batch(loader, path, result)
    if not ok:
        return
    result.batches[stage] = summarize(batch)
    ok, data = _call(preprocessor, (batch, False), {}, "data preprocessor", "data_preprocessor", batch, result)
    if not ok or not _bind(model, data, "predict", "model", result) or not _dtype_device(model, data, path, result):
        return
    model.eval()
    with torch.no_grad():
        ok, outputs = _call(_forward_fn(model), (data, "predict"), {}, "mode='predict'", "model", data, result)
    if not ok:
        return
    names: list[str] = []
    for i, metric in enumerate(metrics):
        where = f"{stage}_evaluator.metrics[{i}]"
        try:
            trial = copy.deepcopy(metric)
        except Exception:  # a metric holding something uncopyable: use it, then restore its results
            trial = metric
        saved_results = list(trial.results)
        trial.results.clear()
        try:
            trial.process(data_batch=batch, data_samples=outputs)
        except Exception as e:  # both sides named: what the model predicts, what the metric reads
            metric_fn = f"{type(metric).__qualname__}.process"
            model_fn = f"{type(model).__qualname__}.forward(mode='predict')"
            result.add(
                where,
                f"process: {metric_fn} raised {_exception_line(e)}; it was given, as data_samples, what "
                f"{model_fn} returned: {summarize(outputs)} (data_batch: {summarize(batch)}); make the "
                f"model's predict output and the metric's process agree" + _hint(e),
            )
            continue
        ok, values = _call(
            functools.partial(evaluate_metric, trial),
            (len(getattr(loader, "dataset", [])) or 1,),
            {},
            "compute_metrics",
            where,
            outputs,
            result,
        )
        if not ok:
            continue
        if not isinstance(values, Mapping) or not values:
            result.add(
                where,
                f"{type(metric).__qualname__}.compute_metrics must return a non-empty mapping of names to numbers, not {summarize(values)}",
            )
            continue
        for key, value in values.items():
            number = value.item() if isinstance(value, Tensor) and value.numel() == 1 else value
            if not isinstance(number, (int, float)) or isinstance(number, bool):
                result.add(
                    where, f"{type(metric).__qualname__}.compute_metrics()[{key!r}] is {summarize(value)}, not a number"
                )
            elif not math.isfinite(float(number)):
                result.add(where, f"{type(metric).__qualname__}.compute_metrics()[{key!r}] is {number} on one batch")
            names.append(str(key))
        trial.results[:] = saved_results
    result.metric_names[stage] = names
