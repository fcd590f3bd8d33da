"""Checkpoint files: written atomically, loaded with ``weights_only=True``."""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from typedrunner.config.hooks import CheckpointHook
from typedrunner.config.runner import LoadFrom
from typedrunner.errors import CheckpointError, Problem, Severity
from typedrunner.parts.standins import find_stand_ins, stand_ins_for

__all__ = [
    "CheckpointError",
    "load_checkpoint",
    "load_model_state",
    "load_optimizer_state",
    "load_weights",
    "publish_checkpoint",
    "remove_stale_temporaries",
    "save_checkpoint",
    "write_text_atomic",
]


def _atomic_write(path: Path, write: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes it 0600: honour the umask, as open() does
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_directory(path.parent)  # the rename itself survives a power cut
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process's umask (read by setting it and putting it back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems cannot fsync a directory; the file itself is on disk
    finally:
        os.close(fd)


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Write ``state`` to ``path`` atomically: a crash leaves the old file or the new, never half."""
    try:
        _atomic_write(path, lambda f: torch.save(state, f))
    except (OSError, RuntimeError) as e:  # torch's zip writer turns a failed write into a RuntimeError
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"cannot write checkpoint {path}: {detail} (disk full, quota or file-size limit?); "
            "the previous checkpoint is intact"
        ) from e


def remove_stale_temporaries(directory: Path) -> list[Path]:
    """Temporary files of writes a kill interrupted (``.<name>.<random>.tmp``, and a sharded
    checkpoint's ``.<name>.dcp.tmp/``): never checkpoints."""
    stale = [p for p in directory.glob(".*.tmp") if p.is_file()] if directory.is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    # a sharded checkpoint's directory being written (``.epoch_2.dcp.tmp``), or the one it replaced
    # (``.best_acc.dcp.old``, dropped only once its successor is in place)
    sharded = [p for p in directory.glob(".*.dcp.tmp") if p.is_dir() and not p.is_symlink()]
    sharded += [
        p
        for p in directory.glob(".*.dcp.old")
        if p.is_dir() and not p.is_symlink() and (directory / p.name[1:].removesuffix(".old")).is_dir()
    ]
    for path in sharded:
        shutil.rmtree(path, ignore_errors=True)
    return stale + sharded


def write_text_atomic(path: Path, text: str) -> None:
    _atomic_write(path, lambda f: f.write(text.encode("utf-8")))


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _reason(error: Exception) -> str:
    """torch's load error in one line: the line naming the refused global when there is one (torch puts
    it deep in a long message, with terminal colour codes)."""
    lines = [line.strip() for line in _ANSI.sub("", str(error)).splitlines() if line.strip()]
    refused = next((line for line in lines if "Unsupported global" in line), None)
    if refused is not None:
        reason = refused.partition("Unsupported global: ")[2] or refused
        return "unsupported global " + reason.split(" was not an allowed global")[0].removeprefix("GLOBAL ")
    return f"{type(error).__name__}: {lines[0] if lines else ''}"


def _foreign_globals(path: Path) -> list[str]:
    """The globals in ``path``'s pickle that ``weights_only`` does not know (read statically, nothing runs);
    none for a file torch cannot scan (the load then reports what is wrong)."""
    try:
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:
        return []


def load_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu", *, stand_ins: bool = False
) -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``: no code in the file runs).

    ``stand_ins``: a checkpoint of another program (MMEngine's) may name classes and functions
    typedrunner does not know; each is loaded as a data-only stand-in (``typedrunner.parts.standins``)
    instead of being refused. Nothing it names is imported or called either way.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    allowed = stand_ins_for(_foreign_globals(path)) if stand_ins else []
    try:
        with torch.serialization.safe_globals(allowed):
            state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        reason = _reason(e)
        if "global mmengine." in reason:
            reason += "; a checkpoint written by MMEngine loads with load_from (its weights), not with resume"
        raise CheckpointError(f"cannot load checkpoint {str(path)!r} safely (weights_only=True): {reason}") from e
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {str(path)!r} holds a {type(state).__name__}, not a dict")
    return state


def publish_checkpoint(path: Path, keys: list[str]) -> Path:
    """A copy of ``path`` holding only ``keys`` (e.g. meta and state_dict), for release."""
    state = load_checkpoint(path)
    published = path.with_name(CheckpointHook.published_file(path.name))
    save_checkpoint({k: v for k, v in state.items() if k in keys}, published)
    return published


def _sharded(model: nn.Module) -> bool:
    """Whether FSDP2 sharded ``model`` (its parameters are ``DTensor`` shards). Without
    ``torch.distributed.tensor`` imported (by FSDP2, which shards) no parameter can be one: the module
    (0.7 s to import) is not imported to find that out."""
    tensor_module = sys.modules.get("torch.distributed.tensor")
    return tensor_module is not None and any(isinstance(p, tensor_module.DTensor) for p in model.parameters())


def load_model_state(model: nn.Module, weights: Mapping[str, Any], *, strict: bool = True) -> None:
    """``model.load_state_dict(weights)``, also into a model FSDP2 sharded: every rank holds the whole
    tensors (a ``.pth`` file) and keeps its shard of each (``set_model_state_dict``)."""
    if _sharded(model):
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

        options = StateDictOptions(full_state_dict=True, strict=strict)
        set_model_state_dict(model, dict(weights), options=options)
    else:
        model.load_state_dict(weights, strict=strict)


def load_optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer, state: Mapping[str, Any]) -> None:
    """``optimizer.load_state_dict(state)`` (torch's layout: parameters by position), also for the
    optimizer of a model FSDP2 sharded: the positions become parameter names, and each rank keeps its
    shard of the whole tensors (``set_optimizer_state_dict``)."""
    if not _sharded(model):
        optimizer.load_state_dict(dict(state))
        return
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    names = {id(p): name for name, p in model.named_parameters()}
    order = [names[id(p)] for group in optimizer.param_groups for p in group["params"]]
    by_name: dict[str, Any] = {
        "state": {order[int(i)]: value for i, value in state.get("state", {}).items()},
        "param_groups": [{**g, "params": [order[int(i)] for i in g["params"]]} for g in state.get("param_groups", [])],
    }
    set_optimizer_state_dict(model, optimizer, by_name, options=StateDictOptions(full_state_dict=True))


def load_weights(
    model: nn.Module, spec: LoadFrom, device: torch.device, loaded: dict[str, Any] | None = None
) -> tuple[dict[str, Any], list[Problem]]:
    """``load_from``: copy matching weights into ``model``; every key or shape mismatch is a problem.

    Strict (the default): any mismatch is an error and nothing is loaded. Partial (``strict: false``):
    what matches is loaded and the rest is reported as warnings; loading nothing at all is an error.
    A checkpoint of another program (MMEngine's) loads too: ``state_dict`` and ``meta`` are taken, what
    else it holds of classes typedrunner does not know (MMEngine's ``message_hub``) is dropped, unrun.
    The checkpoint returned (for ``after_load_checkpoint`` hooks) holds only plain data; it is empty
    when the file gave no weights to compare with the model. ``loaded``: the checkpoint, already
    read (a sharded one, gathered by ``parts.sharded_checkpoint.load_full``).
    """
    try:
        checkpoint = loaded if loaded is not None else load_checkpoint(spec.path, map_location=device, stand_ins=True)
    except CheckpointError as e:
        return {}, [Problem("load_from", str(e))]
    weights = checkpoint.get("state_dict", checkpoint)
    foreign = find_stand_ins(weights)
    if foreign:
        names = ", ".join(sorted(foreign))
        return {}, [
            Problem(
                "load_from",
                f"{spec.path!r}: its weights hold objects of {names}, not tensors; only tensors load "
                f"(weights_only=True: nothing in the file was run)",
            )
        ]
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        return {}, [Problem("load_from", f"{spec.path!r} holds no state dict of tensors (no 'state_dict' key)")]
    checkpoint = {key: value for key, value in checkpoint.items() if not find_stand_ins(value)}
    for pattern, replacement in spec.revise_keys:
        weights = {re.sub(pattern, replacement, key): value for key, value in weights.items()}
    own = model.state_dict()
    severity: Severity = "error" if spec.strict else "warning"
    problems = [
        Problem("load_from", f"missing in the checkpoint: {k}", severity=severity) for k in own if k not in weights
    ]
    problems += [Problem("load_from", f"not in the model: {k}", severity=severity) for k in weights if k not in own]
    matching = {}
    for key, value in weights.items():
        if key not in own:
            continue
        if value.shape != own[key].shape:
            problems.append(
                Problem(
                    "load_from",
                    f"shape mismatch for {key}: checkpoint {list(value.shape)}, model {list(own[key].shape)}",
                    severity=severity,
                )
            )
        else:
            matching[key] = value
    if spec.strict and problems:
        return checkpoint, problems
    if not matching:
        problems.append(Problem("load_from", f"no weight of {spec.path!r} matches the model: nothing would load"))
        return checkpoint, problems
    load_model_state(model, matching, strict=False)
    return checkpoint, problems
