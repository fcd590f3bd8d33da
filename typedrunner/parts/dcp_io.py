"""Sharded checkpoints (FSDP2), the part that needs ``torch.distributed.checkpoint`` (0.8 s to import,
so only :mod:`typedrunner.parts.sharded_checkpoint` imports this module, when a sharded checkpoint
is written or read): a directory ``<name>.dcp/`` written through ``torch.distributed.checkpoint``.

Layout: DCP's own files (``.metadata`` and one ``__<rank>_0.distcp`` per rank) hold every tensor of
the model's and the optimizer's state, each rank writing its shard; ``extra.pth`` (rank 0's, written
with ``torch.save``) holds everything else, exactly as a ``.pth`` checkpoint holds it (meta, RNG,
hooks, schedules, the optimizer's param groups). The directory is written under a temporary name
and renamed into place, as a ``.pth`` is.

Reading is data-only, as for ``.pth`` files: ``extra.pth`` and the tensors load with
``weights_only=True``; DCP's ``.metadata`` (a pickle, which DCP itself reads with ``pickle.load``) is
read by an unpickler that knows only DCP's metadata classes; a checkpoint whose metadata asks for a
non-tensor item (which DCP would unpickle with ``weights_only=False``) or names a file outside its
directory is refused.
"""

from __future__ import annotations

import contextlib
import io
import pathlib
import pickle
import shutil
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.checkpoint import metadata as dcp_metadata
from torch.distributed.checkpoint.default_planner import DefaultLoadPlanner, _EmptyStateDictLoadPlanner
from torch.distributed.checkpoint.filesystem import FileSystemReader, FileSystemWriter, _StorageInfo
from torch.distributed.checkpoint.planner import ReadItem
from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_optimizer_state_dict
from torch.distributed.checkpoint.state_dict_loader import _load_state_dict
from torch.distributed.checkpoint.state_dict_loader import load as dcp_load
from torch.distributed.checkpoint.state_dict_saver import save as dcp_save

from typedrunner.errors import CheckpointError
from typedrunner.parts.checkpoint import load_checkpoint, save_checkpoint

__all__ = ["EXTRA", "load_full", "load_into", "read_metadata", "save_sharded", "split_tensors"]

EXTRA = "extra.pth"
"""The file inside a sharded checkpoint that holds everything but the sharded tensors."""


def split_tensors(tree: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(tensors, rest)``: the nested dicts' tensors, and everything else, under the same keys."""
    tensors: dict[str, Any] = {}
    rest: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, torch.Tensor):
            tensors[key] = value
        elif isinstance(value, Mapping):
            inner_tensors, inner_rest = split_tensors(value)
            if inner_tensors:
                tensors[key] = inner_tensors
            if inner_rest or not inner_tensors:
                rest[key] = inner_rest
        else:
            rest[key] = value
    return tensors, rest


def _merge(into: dict[str, Any], other: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in other.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value
    return into


# -- writing ---------------------------------------------------------------------------------
def save_sharded(state: dict[str, Any], path: Path, model: nn.Module, optimizer: torch.optim.Optimizer | None) -> None:
    """Every rank: write ``state`` (a checkpoint as :func:`checkpoint_state` makes it) into the
    directory ``path``, its model and optimizer tensors sharded. Collective: every rank calls it."""
    state = dict(state)
    state["state_dict"] = get_model_state_dict(model)
    if optimizer is not None and "optimizer" in state:
        state["optimizer"] = get_optimizer_state_dict(model, optimizer)
    tensors, rest = split_tensors({k: state[k] for k in ("state_dict", "optimizer") if k in state})
    extra = {**{k: v for k, v in state.items() if k not in ("state_dict", "optimizer")}, **rest}
    rank = dist.get_rank() if dist.is_initialized() else 0
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        if rank == 0:
            shutil.rmtree(tmp, ignore_errors=True)  # a write a kill interrupted
            tmp.mkdir(parents=True)
        _barrier()
        dcp_save(tensors, storage_writer=FileSystemWriter(tmp, single_file_per_rank=True, sync_files=True))
        if rank == 0:
            save_checkpoint(extra, tmp / EXTRA)
            old = path.with_name(f".{path.name}.old")
            if path.exists():  # the same name again (a best checkpoint): swap, then drop the old one
                shutil.rmtree(old, ignore_errors=True)
                path.rename(old)
            tmp.rename(path)
            shutil.rmtree(old, ignore_errors=True)
    except OSError as e:
        raise CheckpointError(f"cannot write checkpoint {path}: {e}; the previous checkpoint is intact") from e
    finally:
        _barrier()  # no rank goes on (or exits) before the checkpoint is in place


def _barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


# -- reading ---------------------------------------------------------------------------------
_METADATA_CLASSES = {
    ("torch.distributed.checkpoint.metadata", name): getattr(dcp_metadata, name)
    for name in (
        "Metadata",
        "TensorStorageMetadata",
        "ChunkStorageMetadata",
        "TensorProperties",
        "MetadataIndex",
        "StorageMeta",
        "_MEM_FORMAT_ENCODING",
    )
} | {
    ("torch.distributed.checkpoint.filesystem", "_StorageInfo"): _StorageInfo,
    ("torch", "Size"): torch.Size,
    ("torch.serialization", "_get_layout"): torch.serialization._get_layout,
    ("pathlib", "PosixPath"): pathlib.PosixPath,
    ("pathlib", "WindowsPath"): pathlib.PurePosixPath,
    ("collections", "OrderedDict"): dict,
}


class _MetadataUnpickler(pickle.Unpickler):
    """Python's documented way to restrict a pickle: only DCP's metadata classes and torch dtypes."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _METADATA_CLASSES:
            return _METADATA_CLASSES[(module, name)]
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not part of a checkpoint's metadata")


def read_metadata(path: Path) -> dcp_metadata.Metadata:
    """DCP's ``.metadata`` of ``path``, read as data and checked: tensors only, files inside ``path``."""
    try:
        data = (path / ".metadata").read_bytes()
        metadata = _MetadataUnpickler(io.BytesIO(data)).load()
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, TypeError, ValueError) as e:
        raise CheckpointError(f"cannot read checkpoint {str(path)!r}'s metadata safely: {e}") from e
    if not isinstance(metadata, dcp_metadata.Metadata) or not isinstance(metadata.state_dict_metadata, dict):
        raise CheckpointError(f"checkpoint {str(path)!r}: its .metadata is not DCP's metadata")
    for key, item in metadata.state_dict_metadata.items():
        if not isinstance(item, dcp_metadata.TensorStorageMetadata):
            raise CheckpointError(
                f"checkpoint {str(path)!r}: {key} is not a tensor ({type(item).__name__}); typedrunner's sharded "
                "checkpoints hold tensors only, and anything else would be unpickled without weights_only"
            )
    for info in (metadata.storage_data or {}).values():
        name = getattr(info, "relative_path", None)
        if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
            raise CheckpointError(f"checkpoint {str(path)!r}: its metadata names {name!r}, not a file inside it")
    return metadata


class _SafeReader(FileSystemReader):
    """DCP's file reader, with the metadata read by :func:`read_metadata` (checked, data only)."""

    def read_metadata(self, *args: Any, **kwargs: Any) -> dcp_metadata.Metadata:
        metadata = read_metadata(Path(self.path))
        storage_meta = metadata.storage_meta if metadata.storage_meta is not None else dcp_metadata.StorageMeta()
        storage_meta.load_id = self.load_id
        metadata.storage_meta = storage_meta
        return metadata


class _TensorsOnly(DefaultLoadPlanner):
    def load_bytes(self, read_item: ReadItem, value: io.BytesIO) -> None:
        raise CheckpointError(f"{read_item.dest_index.fqn}: not a tensor (refused: it would be unpickled)")


class _AllTensorsOnly(_EmptyStateDictLoadPlanner):
    def load_bytes(self, read_item: ReadItem, value: io.BytesIO) -> None:
        raise CheckpointError(f"{read_item.dest_index.fqn}: not a tensor (refused: it would be unpickled)")


@contextlib.contextmanager
def _one_process_ok() -> Iterator[None]:
    """DCP warns that it loads in one process when no process group is up: that is the intent here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled, unavailable or uninitialized")
        yield


def _extra(path: Path) -> dict[str, Any]:
    return load_checkpoint(path / EXTRA)


@contextlib.contextmanager
def _load_errors(path: Path) -> Iterator[None]:
    """DCP's errors while reading ``path`` as one ``CheckpointError`` naming it (its first line)."""
    try:
        yield
    except CheckpointError:
        raise
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"cannot load sharded checkpoint {str(path)!r}: {first}") from e


def load_into(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer | None) -> dict[str, Any]:
    """Every rank: the checkpoint at ``path`` with ``state_dict`` and ``optimizer`` in the form
    ``set_model_state_dict`` / ``set_optimizer_state_dict`` take for ``model`` (sharded or not:
    DCP reshards to this run's world size). Collective when a process group is up."""
    checkpoint = _extra(path)
    target: dict[str, Any] = {"state_dict": get_model_state_dict(model)}
    if optimizer is not None and "optimizer" in checkpoint:
        target["optimizer"] = get_optimizer_state_dict(model, optimizer)
    tensors, _ = split_tensors(target)
    with _load_errors(path), _one_process_ok():
        dcp_load(tensors, storage_reader=_SafeReader(path), planner=_TensorsOnly())
    return _merge(checkpoint, tensors)


def load_full(path: Path, *, weights: bool = True) -> dict[str, Any]:
    """One process: the checkpoint at ``path`` as a ``.pth`` holds it, its tensors gathered whole
    on the CPU (``weights=False``: without the tensors). Runs no collective."""
    checkpoint = _extra(path)
    if not weights:
        return checkpoint
    tensors: dict[str, Any] = {}
    with _load_errors(path), _one_process_ok():
        # what torch's dcp_to_torch_save runs (the public load fills a copy of an empty dict)
        _load_state_dict(
            tensors,
            storage_reader=_SafeReader(path),
            planner=_AllTensorsOnly(),  # type: ignore[no-untyped-call]
            no_dist=True,
        )
    return _merge(checkpoint, tensors)
