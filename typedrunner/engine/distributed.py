"""Several processes, one run: the process group, the model wrapper, and the messages ranks exchange
outside training's collectives.

Under ``launcher: pytorch`` (torchrun) or ``slurm`` (srun) every rank runs the same program. One
``torch.distributed.TCPStore`` per process (on torchrun's agent store, or hosted by rank 0 under
SLURM) carries what the ranks must agree on before and around training: the moment Hydra's
``${now:}`` resolves to (so every rank resolves one run directory), each rank's validation outcome
(so a problem on any rank is reported once and every rank exits 2), and a failing rank's message
(so rank 0 reports it). The same store backs the process group (``init_process_group(store=...)``).
"""

from __future__ import annotations

import atexit
import contextlib
import inspect
import json
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch._C._distributed_c10d import PrefixStore, TCPStore
from torch.nn.parallel import DistributedDataParallel

from typedrunner.config.distributed import FSDP2
from typedrunner.config.runner import RunnerConfig
from typedrunner.engine.environment import select_device
from typedrunner.engine.fsdp import shard_model
from typedrunner.engine.launchers import LaunchEnv, detect
from typedrunner.errors import ConfigError, Problem, refuse, warning
from typedrunner.parts import distributed as ranks
from typedrunner.parts.model import BaseModel

__all__ = [
    "DistSetup",
    "agreed_time",
    "exchange",
    "next_run",
    "peer_failures",
    "post_failure",
    "setup",
    "shutdown",
    "wrap_model",
]

_STORE_TIMEOUT = timedelta(minutes=30)
_STATE: dict[str, Any] = {}


def _prefix() -> str:
    """Keys of this attempt (torchrun restarts a failed group under the same agent store) and of this
    run in the process (a sweep runs several, one after the other, on every rank)."""
    return f"typedrunner/{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}/{_STATE.get('run', 0)}/"


def next_run() -> None:
    """A new run starts in this process (every rank starts the same runs in the same order)."""
    _STATE["run"] = _STATE.get("run", 0) + 1


def _store(env: LaunchEnv) -> TCPStore:
    """The process's one store: a client of torchrun's agent store, or (SLURM) hosted by rank 0."""
    if "store" not in _STATE:
        agent = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
        _STATE["store"] = TCPStore(
            env.master_addr,
            env.master_port,
            env.world_size,
            is_master=env.rank == 0 and not agent,
            timeout=_STORE_TIMEOUT,
            wait_for_workers=False,
        )
    store: TCPStore = _STATE["store"]
    return store


def agreed_time(env: LaunchEnv) -> datetime:
    """Rank 0's clock, read by every rank: what ``${now:...}`` resolves to on all of them."""
    store, key = _store(env), _prefix() + "now"
    if env.rank == 0:
        store.set(key, datetime.now().isoformat())
    return datetime.fromisoformat(store.get(key).decode())


def exchange(env: LaunchEnv, stage: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Every rank's ``payload`` for ``stage``, in rank order: each rank posts its own, then waits for
    all (no collective of the process group: a rank that failed before joining it still answers)."""
    store = _store(env)
    keys = [f"{_prefix()}{stage}/{r}" for r in range(env.world_size)]
    store.set(keys[env.rank], json.dumps(payload))
    store.wait(keys)
    return [json.loads(store.get(k).decode()) for k in keys]


def post_failure(text: str) -> None:
    """Tell the other ranks why this one is about to exit (rank 0 reports it)."""
    env, store = _STATE.get("env"), _STATE.get("store")
    if env is not None and store is not None:
        with contextlib.suppress(Exception):  # the store's host (rank 0 under SLURM) may be gone already
            store.set(f"{_prefix()}failure/{env.rank}", text)


def peer_failures() -> dict[int, str]:
    """The failures other ranks posted (read without waiting)."""
    env, store = _STATE.get("env"), _STATE.get("store")
    if env is None or store is None:
        return {}
    found = {}
    with contextlib.suppress(Exception):  # a store that is gone has nothing to tell
        for r in range(env.world_size):
            key = f"{_prefix()}failure/{r}"
            if r != env.rank and store.check([key]):
                found[r] = store.get(key).decode()
    return found


@dataclass
class DistSetup:
    """What :func:`setup` decided: the device, the launch environment (None: one process), warnings."""

    device: torch.device
    env: LaunchEnv | None = None
    warnings: list[Problem] = field(default_factory=list)

    @property
    def rank(self) -> int:
        return self.env.rank if self.env is not None else 0


def _launcher_problem(launcher: str, env: LaunchEnv | None) -> Problem | None:
    if launcher == "none":
        if env is not None and env.world_size > 1:
            wanted = env.launcher
            return Problem(
                "launcher",
                f"'none', but this process is {env.describe()}: add launcher={wanted} (every rank would "
                "otherwise train alone and write the same files)",
                launcher,
            )
        return None
    if env is None or env.launcher != launcher:
        how = (
            "start it with torchrun --nproc-per-node=N -m typedrunner ... launcher=pytorch"
            if launcher == "pytorch"
            else "start it with srun (one task per device) ... launcher=slurm, or sweep with "
            "hydra/launcher=submitit_slurm (or submitit_local) and hydra.launcher.tasks_per_node=N"
        )
        found = f"this process was {env.describe()}" if env is not None else "this process was started alone"
        return Problem("launcher", f"{launcher!r} needs its launcher's environment, but {found}: {how}", launcher)
    return None


def setup(cfg: RunnerConfig) -> DistSetup:
    """The device and, under a distributed launcher, the process group (``env_cfg.dist_cfg``)."""
    env = detect()
    problem = _launcher_problem(cfg.launcher, env)
    if problem is not None:
        raise ConfigError([problem])
    if cfg.launcher == "none" or env is None:
        return DistSetup(select_device(cfg.env_cfg))
    torch.backends.cudnn.benchmark = cfg.env_cfg.cudnn_benchmark
    found: list[Problem] = []
    if torch.cuda.is_available():
        if env.local_rank >= torch.cuda.device_count():
            raise refuse(
                "launcher",
                f"{cfg.launcher}: local rank {env.local_rank} but only {torch.cuda.device_count()} CUDA devices: "
                "start at most one process per device",
            )
        torch.cuda.set_device(env.local_rank)
        device = torch.device("cuda", env.local_rank)
    else:
        device = torch.device("cpu")
    backend = cfg.env_cfg.dist_cfg.backend or ("nccl" if device.type == "cuda" else "gloo")
    if backend == "nccl" and device.type != "cuda":
        found.append(warning("env_cfg.dist_cfg.backend", "nccl needs CUDA; this run is on the CPU: using gloo"))
        backend = "gloo"
    timeout = timedelta(seconds=cfg.env_cfg.dist_cfg.timeout)
    if not dist.is_initialized():
        store = _store(env)
        store.set_timeout(timeout)
        _STATE["settled"] = False
        dist.init_process_group(
            backend,
            store=PrefixStore(_prefix() + "pg", store),
            rank=env.rank,
            world_size=env.world_size,
            timeout=timeout,
        )
        if not _STATE.get("leaves_at_exit"):
            # A script that ends without shutdown() (the Python API: Runner(...).train() under
            # torchrun) would leave the group's threads to the interpreter's teardown, which can abort
            # the process ("terminate called without an active exception", exit -6).
            atexit.register(shutdown)
            _STATE["leaves_at_exit"] = True
    _STATE["env"] = env
    return DistSetup(device, env, found)


def wrap_model(model: nn.Module, cfg: RunnerConfig, setup: DistSetup) -> tuple[nn.Module, nn.Module]:
    """``(model, wrapped)``: ``sync_bn`` applied to the model, then DDP around it (``model_wrapper_cfg``).
    One process: the model twice. Hooks and checkpoints see ``model``; the train step runs ``wrapped``.
    FSDP2 shards the model in place: the same object twice."""
    if setup.env is None:
        return model, model
    if isinstance(model, BaseModel) and type(model).train_step is not BaseModel.train_step:
        raise refuse(
            "model",
            f"{type(model).__name__} defines its own train_step, which would step the model without "
            "synchronising gradients across ranks; under a distributed launcher the Runner runs the step "
            "(preprocess, forward through DDP, backward, update): remove the override or use launcher: none",
        )
    if isinstance(cfg.model_wrapper_cfg, FSDP2):
        if cfg.sync_bn is not None:
            raise refuse("sync_bn", "is DDP's; FSDP2 does not convert BatchNorm: remove sync_bn", cfg.sync_bn)
        sharded = shard_model(model, cfg, cfg.model_wrapper_cfg)
        return sharded, sharded
    if cfg.sync_bn == "torch":
        norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if norms and setup.device.type != "cuda":
            raise refuse(
                "sync_bn",
                f"'torch' needs CUDA (torch's SyncBatchNorm runs on GPUs); this run is on {setup.device.type}: "
                "remove sync_bn (each rank then keeps its own BatchNorm statistics)",
                cfg.sync_bn,
            )
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # type: ignore[no-untyped-call]
    wrapper = cfg.model_wrapper_cfg
    if isinstance(wrapper, FSDP2):  # pragma: no cover - handled above (narrows the type for mypy)
        raise TypeError("unreachable")
    options: dict[str, Any] = {
        "find_unused_parameters": wrapper.find_unused_parameters,
        "static_graph": wrapper.static_graph,
        "gradient_as_bucket_view": wrapper.gradient_as_bucket_view,
    }
    if not wrapper.broadcast_buffers:  # torch >= 2.13 spells it forward_sync_buffers (same meaning)
        new = "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
        options["forward_sync_buffers" if new else "broadcast_buffers"] = False
    if wrapper.bucket_cap_mb is not None:
        options["bucket_cap_mb"] = wrapper.bucket_cap_mb
    device_ids = [setup.device.index] if setup.device.type == "cuda" else None
    return model, DistributedDataParallel(model, device_ids=device_ids, **options)


def shutdown() -> None:
    """Leave the process group (end of a run), then give gloo's worker threads the time to drop the
    collectives they finished (:func:`_let_gloo_workers_settle`), also where the script destroyed the
    group itself."""
    left = dist.is_initialized()
    if left:
        dist.destroy_process_group()
    if left or (not _STATE.get("settled") and _gloo_worker_states()):
        _let_gloo_workers_settle()
        _STATE["settled"] = True  # the command line's shutdown, then the one at exit: one wait
    ranks.forget_control_group()


_GLOO_WORKER = "pt_gloo_runloop"  # the name torch gives the worker threads of a gloo process group
_SETTLE_MAX_S = 0.5
_SETTLE_STEP_S = 0.01


def _gloo_worker_states() -> list[str] | None:
    """The scheduler state (``R`` running, ``S`` sleeping, ...) of each gloo worker thread of this
    process; None where ``/proc`` cannot tell (not Linux)."""
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return None
    states = []
    for tid in tasks:
        try:
            with open(f"/proc/self/task/{tid}/stat", encoding="utf-8", errors="replace") as f:
                stat = f.read()
        except OSError:  # the thread ended meanwhile
            continue
        name, _, rest = stat.partition("(")[2].rpartition(")")
        if name == _GLOO_WORKER and rest.split():
            states.append(rest.split()[0])
    return states


def _let_gloo_workers_settle() -> None:
    """Wait (the GIL released) until gloo's worker threads have released the collectives they ran.

    A gloo worker thread drops its reference to a finished collective (and so to the tensors Python
    passed it) after the call that waited for it has returned; that release takes the GIL to let go of
    the tensors' Python objects. ``destroy_process_group()`` does not stop these threads while anything
    still holds the group (a DDP wrapper, a user's reference), and once the interpreter finalises, a
    thread that takes the GIL is ended by CPython (``pthread_exit``), which, inside gloo's noexcept
    destructor, is ``std::terminate``: "terminate called without an active exception", exit -6 of a
    rank that had finished its work. So the process sleeps in short steps (each lets a waiting worker
    take the GIL) until every worker has been seen asleep three times in a row, at most half a second
    (without ``/proc``: a tenth of a second)."""
    deadline = time.monotonic() + _SETTLE_MAX_S
    quiet = 0
    while quiet < 3 and time.monotonic() < deadline:
        time.sleep(_SETTLE_STEP_S)
        states = _gloo_worker_states()
        if states is None:
            time.sleep(0.1)
            return
        if not states:  # no gloo group left in this process
            return
        quiet = quiet + 1 if all(s in ("S", "I") for s in states) else 0
