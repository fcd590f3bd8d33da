"""``hydra/sweeper: typedrunner`` — Hydra's basic sweeper, but every point of the sweep is composed,
validated and probed (once per distinct config: points differing only in the learning rate share
one probe) before the first job starts.

Hydra's own sweepers validate overrides only against the first config (Hydra issues 283, 2888): a
sweep whose 7th point has a bad value trains six jobs before it fails. Here any invalid point stops
the whole sweep with one report naming the point and the path, exit code 2, nothing launched.
"""

import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional  # noqa: UP035 (OmegaConf reads these annotations at runtime)

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, open_dict

from typedrunner.errors import ConfigError, Problem, render_problems

__all__ = ["TypedRunnerSweeper", "TypedRunnerSweeperConf"]


@dataclass
class TypedRunnerSweeperConf:
    _target_: str = "hydra_plugins.typedrunner_sweeper.typedrunner_sweeper.TypedRunnerSweeper"
    max_batch_size: Optional[int] = None  # noqa: UP045
    params: Optional[Dict[str, str]] = None  # noqa: UP006, UP045


ConfigStore.instance().store(
    group="hydra/sweeper", name="typedrunner", node=TypedRunnerSweeperConf, provider="typedrunner"
)

# The probe's verdict (``Runner.checked``: the parts it builds, the batches it sends, the checks that
# read the config: save_best against the metric names, schedules against the dataloader's length,
# hooks, resume, ...) may depend on any field, so points share a probe only when their validated
# configs are equal but for what provably cannot change it: a new field is probed by default.
_NOT_PROBED = ("work_dir", "experiment_name")  # the probe runs in its own throwaway work_dir


class TypedRunnerSweeper(BasicSweeper):
    """Validate all points, then sweep as Hydra's ``BasicSweeper`` does."""

    def __init__(self, max_batch_size: int | None = None, params: dict[str, str] | None = None) -> None:
        super().__init__(max_batch_size=max_batch_size, params=params)

    def sweep(self, arguments: list[str]) -> Any:
        assert self.config is not None and self.hydra_context is not None  # set by Hydra's setup()
        params_conf = self._parse_config()
        params_conf.extend(arguments)
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        points = [list(p) for batch in self.split_arguments(parser.parse_overrides(params_conf), None) for p in batch]
        problems = self._validate(points)
        if problems:
            print(render_problems(problems, f"sweep refused before launch ({len(points)} points)"), file=sys.stderr)
            sys.stderr.flush()
            sys.exit(2)
        return super().sweep(arguments)

    def _validate(self, points: list[list[str]]) -> list[Problem]:
        from typedrunner.app.compose import to_runner_config
        from typedrunner.check.cross_field import cross_field_problems

        assert self.config is not None and self.hydra_context is not None
        loader = self.hydra_context.config_loader
        problems: list[Problem] = []
        probed: dict[str, list[Problem]] = {}
        runs = 0
        tasks = _tasks_per_job(self.config)
        for number, overrides in enumerate(points):
            label = f"sweep point #{number} ({' '.join(overrides) or 'no overrides'})"
            try:
                # work_dir points at the job's own directory, which exists only once it runs
                job: DictConfig = loader.load_sweep_config(self.config, [*overrides, "work_dir=null"])
                with open_dict(job):
                    job.pop("hydra")  # Hydra's own settings, resolved per job when it runs
                config, _ = to_runner_config(job)
                found = cross_field_problems(config) + _launcher_problems(config.launcher, tasks)
                if not any(p.severity == "error" for p in found):
                    key = _probe_key(config)
                    if key is None or key not in probed:
                        runs += 1
                        # a submitit job's tasks form their process group there; the probe here is one process
                        probe = config if tasks is None else config.model_copy(update={"launcher": "none"})
                        probed[key or f"#{number}"] = self._probe(probe)
                    found += probed[key or f"#{number}"]
            except ConfigError as e:
                found = list(e.problems)
            problems += [
                Problem(p.path, p.message, p.value, source=label, stage=p.stage, severity=p.severity)
                for p in found
                if p.severity == "error"
            ]
        count = len(points)
        print(f"sweep checked before launch: {count} point{'s' * (count != 1)}, {runs} probe{'s' * (runs != 1)}")
        sys.stdout.flush()
        return problems

    @staticmethod
    def _probe(config: Any) -> list[Problem]:
        """The contract probe, once per distinct ``_probe_key`` (in a throwaway work_dir)."""
        from typedrunner.engine.runner import Runner

        with tempfile.TemporaryDirectory(prefix="typedrunner_sweep_probe_") as tmp:
            try:
                runner = Runner.checked(config.model_copy(update={"work_dir": str(Path(tmp) / "probe")}))
            except ConfigError as e:
                return list(e.problems)
            return [p for p in runner.findings if p.severity == "error"]


def _tasks_per_job(config: Any) -> int | None:
    """How many processes each job is (``hydra.launcher.tasks_per_node`` x ``nodes``) when the launcher
    starts them itself (hydra-submitit-launcher: on SLURM, or on this machine); None for a launcher
    that runs each job in one process (Hydra's basic launcher, joblib)."""
    launcher = config.hydra.launcher
    if not str(launcher.get("_target_", "")).startswith("hydra_plugins.hydra_submitit_launcher."):
        return None
    return int(launcher.get("tasks_per_node") or 1) * int(launcher.get("nodes") or 1)


def _launcher_problems(launcher: str, tasks: int | None) -> list[Problem]:
    """A submitit job's tasks are a DDP group under ``launcher: slurm`` only (README, "Training on
    several GPUs and nodes"): ``none`` with several tasks would train each alone, ``pytorch`` waits for
    torchrun's environment. Refused here, before any job is submitted."""
    if tasks is None or launcher == "slurm" or (launcher == "none" and tasks == 1):
        return []
    if launcher == "none":
        why = f"'none', but hydra.launcher.tasks_per_node x nodes starts {tasks} tasks per job, each training alone"
    else:
        why = f"{launcher!r} is not how submitit starts a job's tasks"
    return [Problem("launcher", f"{why}: add launcher=slurm (submitit's tasks form each job's DDP group)", launcher)]


def _probe_key(config: Any) -> str | None:
    """What the probe's verdict depends on: the validated config as JSON, less ``_NOT_PROBED`` and the
    learning rate of a typed optimizer (schema-checked ``> 0``, and the probe takes no step); a generic
    optimizer's ``lr`` stays, as torch checks it only when the optimizer is built. None (probe this
    point on its own) when a value is a built object, whose JSON form does not tell two apart."""
    from typedrunner.registry.lazy import Lazy

    data = {k: v for k, v in config.model_dump(mode="json").items() if k not in _NOT_PROBED}
    wrappers = config.optim_wrapper if isinstance(config.optim_wrapper, dict) else {None: config.optim_wrapper}
    for name, wrapper in wrappers.items():
        if wrapper is not None and not isinstance(wrapper.optimizer, Lazy):
            dumped = data["optim_wrapper"] if name is None else data["optim_wrapper"][name]
            dumped["optimizer"].pop("lr", None)
    key = json.dumps(data, sort_keys=True)
    return None if "<built " in key else key
