"""The command line under torchrun or srun: one run directory, one report, every rank exits together.

Hydra runs in every rank's process. Left alone, each rank resolves ``${now:...}`` at its own moment,
creates its own run directory and writes its own ``.hydra/`` (Hydra issue 2070). Here, before Hydra
starts, the ranks read rank 0's clock through the launcher's store, so ``hydra.run.dir`` resolves to
one directory on all of them, and ranks other than 0 do not write ``.hydra/``. Validation and the
contract probe end with an exchange of outcomes (through the store, not the process group, which a
failing rank may never have joined): a problem on any rank is reported once, by rank 0, and every
rank exits 2.

A sweep through hydra-submitit-launcher with ``tasks_per_node`` > 1 runs each job as a group of
tasks, each running Hydra's job itself in the same job directory (the plugin resolves it from the
sweep's config, ``${now:}`` included, once). There, ranks other than 0 leave ``.hydra/`` to rank 0
too (:func:`rank_zero_writes_submitit_job_dir`).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from typedrunner.engine.launchers import LaunchEnv, detect
from typedrunner.errors import ConfigError, Problem, TypedRunnerError

__all__ = [
    "RankProblems",
    "agreeing",
    "failure_report",
    "launch_env",
    "pin_run_directory",
    "rank_zero_writes_submitit_job_dir",
    "reports",
]

_PEER_WAIT_S = 3.0
"""How long rank 0 waits for a failing peer's message before reporting (the peer posts before exiting)."""


class RankProblems(TypedRunnerError):
    """Another rank (or several, differently) found a problem before training: nothing was trained."""


def launch_env() -> LaunchEnv | None:
    """This process's launch environment when it is one of several ranks; None for a single process."""
    env = detect()
    return env if env is not None and env.world_size > 1 else None


def pin_run_directory(argv: list[str]) -> None:
    """Before Hydra starts: every rank resolves ``${now:...}`` to rank 0's moment (so one run directory),
    and ranks other than 0 leave ``.hydra/`` to rank 0 (``hydra.output_subdir=null``)."""
    env = launch_env()
    if env is None:
        return
    import hydra.core.utils as hydra_utils

    from typedrunner.engine import distributed

    moment = distributed.agreed_time(env)

    class _RankZeroClock(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return moment

    setattr(hydra_utils, "datetime", _RankZeroClock)  # noqa: B010  (read by Hydra's ${now:} resolver only)
    if env.rank != 0:
        argv.append("hydra.output_subdir=null")


def rank_zero_writes_submitit_job_dir() -> None:
    """In a task of a submitit job other than rank 0: Hydra's job runs with ``hydra.output_subdir=null``,
    so that only rank 0 writes the job directory's ``.hydra/`` (as :func:`pin_run_directory` arranges
    under torchrun). hydra-submitit-launcher calls Hydra's ``run_job`` itself in every task, which
    writes ``.hydra/`` before any code of ours runs: the call is wrapped here, when this module is
    imported to unpickle the job (``cli._install_in_sweep_jobs``). Nothing happens outside submitit."""
    if not os.environ.get("SUBMITIT_EXECUTOR"):
        return
    env = launch_env()
    if env is None or env.rank == 0:
        return
    try:
        plugin = importlib.import_module("hydra_plugins.hydra_submitit_launcher.submitit_launcher")
    except ImportError:
        return
    import hydra.core.utils as hydra_utils

    run_job = hydra_utils.run_job
    if getattr(run_job, "_typedrunner_rank", None) is not None:
        return  # wrapped already

    def without_hydra_dir(*args: Any, **kwargs: Any) -> Any:
        from omegaconf import open_dict, read_write

        config = kwargs.get("config")
        if config is not None:
            with read_write(config.hydra), open_dict(config.hydra):
                config.hydra.output_subdir = None
        return run_job(*args, **kwargs)

    setattr(without_hydra_dir, "_typedrunner_rank", env.rank)  # noqa: B010
    # The plugin calls its module's run_job, imported from Hydra's; Hydra's plugin scan re-runs the
    # plugin's module (re-importing the name), so both places hold the wrapper.
    setattr(hydra_utils, "run_job", without_hydra_dir)  # noqa: B010
    setattr(plugin, "run_job", without_hydra_dir)  # noqa: B010


@contextlib.contextmanager
def agreeing(stage: str, output_dir: Path) -> Iterator[None]:
    """Run a stage that every rank must pass (validation, the probe), then compare outcomes: when any
    rank failed, every rank raises (rank 0 reports it; see :func:`reports`), so all exit together."""
    env = launch_env()
    if env is None:
        yield
        return
    from typedrunner.engine import distributed

    if stage == "validated":
        distributed.next_run()  # a sweep's next job: fresh keys for its exchanges and its process group
    own: BaseException | None = None
    try:
        yield
    except BaseException as e:
        own = e
    text = "" if own is None else (str(own) if isinstance(own, TypedRunnerError) else f"{type(own).__name__}: {own}")
    outcomes = distributed.exchange(env, stage, {"error": text, "dir": str(output_dir)})
    failed = {r: o["error"] for r, o in enumerate(outcomes) if o["error"]}
    if failed and own is not None and len(failed) == env.world_size and len(set(failed.values())) == 1:
        raise own  # the same problem everywhere (a config mistake): reported as one process would
    if failed:
        lines = [f"rank {r}: {message}" for r, message in failed.items()]
        raise RankProblems("\n".join(["a problem found before training, on " + _ranks(failed), *lines]))
    if own is not None:
        raise own
    dirs = {o["dir"] for o in outcomes}
    if len(dirs) > 1:
        listing = ", ".join(f"rank {r}: {o['dir']}" for r, o in enumerate(outcomes))
        raise ConfigError(
            [
                Problem(
                    "hydra.run.dir",
                    f"resolves to a different directory on each rank ({listing}); use a pattern that depends "
                    "only on the config and ${now:...}, or give work_dir",
                )
            ]
        )


def _ranks(failed: dict[int, str]) -> str:
    return ("rank " if len(failed) == 1 else "ranks ") + ", ".join(str(r) for r in failed)


def _collective_failure(error: BaseException) -> bool:
    """Whether ``error`` is a collective that failed because a peer went away."""
    import torch.distributed as dist

    return isinstance(error, dist.DistError) or any(w in str(error) for w in ("gloo", "Connection", "NCCL"))


def reports() -> bool:
    """Whether this process prints and writes the run's error reports (rank 0, or a single process)."""
    env = launch_env()
    return env is None or env.rank == 0


def failure_report(text: str, error: BaseException) -> str:
    """A training failure on this rank, as this process reports it. Under several ranks the message is
    posted for rank 0 (the other ranks fail next, in their collectives); rank 0's report leads with
    the failures the other ranks posted, which name the cause (when rank 0's own error is a failed
    collective, it waits a moment for them)."""
    env = launch_env()
    if env is None:
        return text
    from typedrunner.engine import distributed

    distributed.post_failure(text)
    if env.rank != 0:
        return f"[rank {env.rank}] {text}"
    deadline = time.monotonic() + (_PEER_WAIT_S if _collective_failure(error) else 0.0)
    peers = distributed.peer_failures()
    while not peers and time.monotonic() < deadline:
        time.sleep(0.1)
        peers = distributed.peer_failures()
    lines = [f"rank {r}: {message}" for r, message in sorted(peers.items())]
    return "\n".join([*lines, f"rank 0: {text}"]) if lines else text
