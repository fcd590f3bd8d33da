"""``Runner``: wires the built parts together and runs the loops. Read it top to bottom.

The run's progress lives in one :class:`RunState`; hooks see the run through ``RunView`` and the loops
through ``LoopHost``, both of which the Runner implements.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn
from torch.utils.data import DataLoader as TorchDataLoader

from typedrunner.build import hooks as build_hooks
from typedrunner.build import parts as build
from typedrunner.build.visualizer import build_visualizer
from typedrunner.check.cross_field import cross_field_problems
from typedrunner.check.findings import EvalStage, run_checks
from typedrunner.config.env import CompileCfg
from typedrunner.config.hooks import CheckpointHook as CheckpointHookConfig
from typedrunner.config.hooks import LoggerHook as LoggerHookConfig
from typedrunner.config.optim import OptimWrapper as OptimWrapperConfig
from typedrunner.config.runner import LoadFrom, RunnerConfig
from typedrunner.engine import checkpoints, distributed
from typedrunner.engine.environment import set_randomness
from typedrunner.engine.fsdp import is_sharded
from typedrunner.engine.guards import GracefulStop, NonFiniteGuard, worker_deaths_named
from typedrunner.engine.loops import (
    TestLoop,
    TrainLoop,
    ValLoop,
    train_loop_for,
    train_step_for,
)
from typedrunner.engine.records import open_run, write_summary
from typedrunner.engine.state import RunState
from typedrunner.errors import CheckpointError, ConfigError, ContractError, Problem, TrainingStopped, refuse, warning
from typedrunner.parts import distributed as ranks
from typedrunner.parts.checkpoint import load_weights, publish_checkpoint, save_checkpoint, write_text_atomic
from typedrunner.parts.evaluator import Evaluator
from typedrunner.parts.hooks.base import Hook, HookList
from typedrunner.parts.logging import RunLogger
from typedrunner.parts.optim import OptimWrapper
from typedrunner.parts.schedulers import ScheduleSlot
from typedrunner.parts.sharded_checkpoint import is_sharded_checkpoint, load_full, save_sharded, sharded_name

__all__ = ["Runner"]


class Runner:
    """Train, validate and test a model described by a :class:`RunnerConfig`.

    ``Runner(cfg)`` takes a validated config; ``Runner(model=..., train_dataloader=..., ...)`` takes
    MMEngine's keyword arguments (built objects or dicts) and validates them the same way.
    """

    def __init__(self, cfg: RunnerConfig | Mapping[str, Any] | None = None, /, **kwargs: Any) -> None:
        # 1. One validated config, whatever the entry point.
        if cfg is None:
            cfg = RunnerConfig.from_dict(kwargs)
        elif kwargs:
            raise TypeError("give either a RunnerConfig or keyword arguments, not both")
        elif not isinstance(cfg, RunnerConfig):
            cfg = RunnerConfig.from_dict(cfg)
        self._build_parts(cfg)
        self._build_training()

    @classmethod
    def checked(cls, cfg: RunnerConfig, *, strict: bool = False) -> Runner:
        """Build what the contract probe needs, probe (see :meth:`check`), and only then build the
        optimizer, schedulers and hooks and load weights: the quickest way to a report of a mistake.
        Raises ``ContractError`` on errors (and on warnings when ``strict``)."""
        runner = cls.__new__(cls)
        runner._build_parts(cfg)
        runner.raise_for(runner.check(), strict=strict)
        runner._build_training()
        runner.raise_for(runner.findings, strict=strict)  # a resume's differences, found after the probe
        return runner

    def _build_parts(self, cfg: RunnerConfig) -> None:
        """Steps 1-4: config checks, environment, model, data, evaluation (all the probe needs)."""
        problems = cross_field_problems(cfg)
        if any(p.severity == "error" for p in problems):
            raise ConfigError(problems)
        self.config_warnings = problems
        self.metric_names: dict[str, list[str]] = {}
        """Per stage (``val``, ``test``), the metric names the evaluator returned in the probe."""
        self.batch_structure: dict[str, str] = {}
        """Per stage, the structure of the probe's batch."""
        self.findings: list[Problem] = []
        """What the last :meth:`check` found (warnings only, once training starts)."""
        self.cfg = cfg
        self.work_dir = cfg.resolved_work_dir
        self.state = RunState()

        # 2. Environment (the device; under a launcher, the process group) and randomness, before
        # anything random is built.
        self.dist = distributed.setup(cfg)
        self.rank, self.device = self.dist.rank, self.dist.device
        self.config_warnings += self.dist.warnings
        self.logger = RunLogger(cfg.log_level, cfg.log_processor.num_digits, rank=self.rank)
        # Backends open with the run's files; only rank 0 has any (one run in TensorBoard, MLflow, W&B).
        self.visualizer = build_visualizer(cfg, self.logger, backends=self.rank == 0)
        agree = (lambda seed: int(ranks.gather_objects(seed)[0])) if self.dist.env is not None else None
        self.seed = set_randomness(cfg.randomness, self.rank, agree)

        # 3. Model and data preprocessor; under a launcher, DDP around the model (hooks, checkpoints
        # and evaluation see the model itself, the train step runs through the wrapper).
        model = build.build_model(cfg.model).to(self.device)
        if cfg.compile:
            options = cfg.compile if isinstance(cfg.compile, CompileCfg) else CompileCfg()
            model.compile(**options.model_dump())  # in place: state_dict keys are unchanged
        self.model, self.wrapped_model = distributed.wrap_model(model, cfg, self.dist)
        self.data_preprocessor = build.build_data_preprocessor(cfg.data_preprocessor, self.model, self.device)
        self.train_step = train_step_for(self.wrapped_model, self.data_preprocessor)

        # 4. Data and evaluation.
        pin_ok, start = self.device.type == "cuda", cfg.env_cfg.mp_cfg.mp_start_method
        debug, overfit = cfg.debug, cfg.debug.overfit_batches is not None
        loaders: dict[str, TorchDataLoader[Any] | None] = {
            f"{stage}_dataloader": build.build_dataloader(
                spec,
                f"{stage}_dataloader",
                self.seed,
                pin_ok,
                start,
                debug.batches(stage),
                overfit and stage == "train",
            )
            if spec is not None
            else None
            for stage, spec in (
                ("train", cfg.train_dataloader),
                ("val", cfg.val_dataloader),
                ("test", cfg.test_dataloader),
            )
        }
        self.train_dataloader = loaders["train_dataloader"]
        val_dl, test_dl = loaders["val_dataloader"], loaders["test_dataloader"]
        logger_hook, wrapper_cfg = cfg.default_hooks.logger, cfg.optim_wrapper
        skips = isinstance(wrapper_cfg, OptimWrapperConfig) and wrapper_cfg.nonfinite == "skip"
        # the loss is checked for NaN/inf at each log point: one host read per logger interval
        self.nonfinite_guard = NonFiniteGuard((logger_hook or LoggerHookConfig()).interval, not skips)
        dev, eval_fp16 = self.device, build.eval_fp16
        evaluator = build.build_evaluator
        self.val_loop = (
            ValLoop(self, val_dl, evaluator(cfg.val_evaluator, "val_evaluator"), eval_fp16(cfg.val_cfg, "val_cfg", dev))
            if val_dl is not None and cfg.val_evaluator is not None
            else None
        )
        self.test_loop = (
            TestLoop(
                self, test_dl, evaluator(cfg.test_evaluator, "test_evaluator"), eval_fp16(cfg.test_cfg, "test_cfg", dev)
            )
            if test_dl is not None and cfg.test_evaluator is not None
            else None
        )

    def _build_training(self) -> None:
        """Steps 5-8: optimization, the train loop and schedules, hooks, then resume or pretrained weights."""
        cfg = self.cfg
        # 5. Optimization.
        self.optim_wrapper = (
            build.build_optim_wrappers(
                cfg.optim_wrapper,
                self.model,
                self.device,
                build.lr_scale(cfg.auto_scale_lr, cfg.train_dataloader, ranks.world_size()),
            )
            if cfg.optim_wrapper is not None
            else None
        )
        # 6. The train loop and the schedules over its length.
        self.train_loop = train_loop_for(self, self.train_dataloader, self.optim_wrapper, cfg.train_cfg)
        self.schedulers: list[ScheduleSlot] = []
        if self.optim_wrapper is not None and self.train_loop is not None:
            self.optim_wrapper.max_calls = self.train_loop.max_iters
            self.schedulers = build.build_schedules(
                cfg, self.optim_wrapper, self.train_loop.max_epochs, self.train_loop.max_iters
            )

        # 7. Hooks, last: they may look at everything above.
        hooks = build_hooks.build_default_hooks(cfg.default_hooks, cfg.log_processor, self.schedulers)
        hooks += [build_hooks.build_hook(h, f"custom_hooks[{i}]") for i, h in enumerate(cfg.custom_hooks)]
        self.hooks = HookList(hooks)
        val, test = (getattr(loop, "dataloader", None) for loop in (self.val_loop, self.test_loop))
        bar = build_hooks.build_progress_bar(cfg.log_processor, val, test) if self.rank == 0 else None
        if bar is not None:  # a terminal (rank 0's): bars, fed the logged loss and lr at log points
            self.hooks.add(bar)
            self.logger.sinks.append(bar)

        # 8. Resume, or pretrained weights: loaded now, so a mismatch stops us before anything is written.
        if cfg.resume:
            self._resume()
        elif cfg.load_from is not None:
            self.load_weights(cfg.load_from)

    def _resume(self) -> None:
        """``resume``: continue from ``load_from`` or the latest checkpoint in work_dir, exactly."""
        found = checkpoints.resume_checkpoint(self.cfg, self.work_dir, self.model, self.optim_wrapper)
        if found is None:
            self.logger.info("nothing to resume: starting from scratch", work_dir=str(self.work_dir))
            return
        path, checkpoint = found
        meta, changes = checkpoints.restore(
            checkpoint,
            path,
            cfg=self.cfg,
            state=self.state,
            model=self.model,
            hooks=self.hooks.hooks,
            optim_wrapper=self.optim_wrapper,
            schedulers=self.schedulers,
            train_loop=self.train_loop,
        )
        loaders = (self.train_dataloader, *(getattr(x, "dataloader", None) for x in (self.val_loop, self.test_loop)))
        self.seed = checkpoints.adopt_seed(self.cfg, loaders, meta.seed, self.seed)  # as the interrupted run
        new = [warning("resume", f"differs from the checkpoint's config: {c}", stage="resume") for c in changes]
        self.config_warnings += new
        self.findings += new  # the command line checks before resuming: logged with the other findings
        self.hooks.after_load_checkpoint(self, checkpoint)
        state = self.state
        self.logger.info(
            "resumed", checkpoint=str(path), epoch=state.epoch, iter=state.iter, inner_iter=state.inner_iter
        )

    # -- entry points -------------------------------------------------------------------------
    @classmethod
    def from_cfg(cls, cfg: Mapping[str, Any] | RunnerConfig) -> Runner:
        """MMEngine's ``Runner.from_cfg``: a config dict (e.g. from ``Config.fromfile``)."""
        return cls(cfg if isinstance(cfg, RunnerConfig) else dict(cfg))

    def check(self) -> list[Problem]:
        """Every finding short of training: warnings from the config, checks that need the built
        parts, and the contract probe (one real batch per dataloader, without side effects)."""
        evals = [EvalStage(loop.stage, loop.dataloader, loop.evaluator.metrics) for loop in self._eval_loops()]
        self.findings, probed = run_checks(
            self.cfg,
            model=self.model,
            preprocessor=self.data_preprocessor,
            train_dataloader=self.train_dataloader,
            evals=evals,
            work_dir=self.work_dir,
            iters_per_epoch=self.iters_per_epoch,
            config_warnings=self.config_warnings,
        )
        self.metric_names, self.batch_structure = probed.metric_names, probed.batches
        return self.findings

    def _eval_loops(self) -> list[ValLoop | TestLoop]:
        return [loop for loop in (self.val_loop, self.test_loop) if loop is not None]

    def train(self, *, check: bool = True, strict: bool = False) -> nn.Module:
        """Check (see :meth:`check`), then train, validating as configured; return the model.

        Errors found by the check raise ``ContractError`` before the first optimizer step; warnings
        are logged, and raise too when ``strict``.
        """
        if self.train_loop is None or self.optim_wrapper is None:
            missing = [k for k in ("train_dataloader", "train_cfg", "optim_wrapper") if getattr(self.cfg, k) is None]
            raise ConfigError([Problem(k, "required to train") for k in missing])
        if check:
            self.raise_for(self.check(), strict=strict)
        started = time.perf_counter()
        if self.rank == 0:
            open_run(self.cfg, self.work_dir, self.logger, training=True)
        try:
            self._train(self.train_loop, started)
        finally:
            self.logger.close()
        return self.model

    def _train(self, loop: TrainLoop, started: float) -> None:
        for finding in self.findings:
            self.logger.warning(finding.render(), stage=finding.stage)
        self.logger.info(
            "training",
            epochs=self.max_epochs,
            iters_per_epoch=self.iters_per_epoch,
            device=str(self.device),
            seed=self.seed,
            work_dir=str(self.work_dir),
        )
        self.hooks.before_run(self)
        with GracefulStop(self.state, self.logger):
            try:
                with worker_deaths_named(self.state):
                    loop.run()
            except TrainingStopped as stop:
                path = self.save_checkpoint(f"stopped_iter_{self.state.iter}.pth")
                self.logger.warning(
                    f"stopped by {stop.signal_name} after iteration {self.state.iter}",
                    checkpoint=str(path),
                    resume_with=f"resume=true work_dir={self.work_dir}",
                )
                raise TrainingStopped(stop.signal_name, path) from None
        self.nonfinite_guard.check(self.state)
        self.hooks.after_run(self)
        if self.rank == 0:
            write_summary(self.state, self.work_dir, time.perf_counter() - started, self.logger)

    def val(self) -> dict[str, float]:
        """Run the validation loop once; return the metrics."""
        return self._evaluate(self.val_loop, "val", "validate")

    def test(self) -> dict[str, float]:
        """Run the test loop once; return the metrics."""
        return self._evaluate(self.test_loop, "test", "test")

    def _evaluate(self, loop: ValLoop | TestLoop | None, stage: str, verb: str) -> dict[str, float]:
        if loop is None:
            keys = (f"{stage}_dataloader", f"{stage}_cfg", f"{stage}_evaluator")
            raise ConfigError([Problem(k, f"required to {verb}") for k in keys if getattr(self.cfg, k) is None])
        if self.rank == 0:
            open_run(self.cfg, self.work_dir, self.logger)
        try:
            self.hooks.before_run(self)
            metrics = loop.run()
            self.hooks.after_run(self)
        finally:
            self.logger.close()
        return metrics

    @staticmethod
    def raise_for(findings: list[Problem], *, strict: bool = False) -> None:
        """Raise ``ContractError`` for errors (and warnings, when strict); warnings are logged by train()."""
        if any(p.severity == "error" or strict for p in findings):
            raise ContractError(findings)

    def register_hook(self, hook: Hook) -> None:
        """Add a hook after construction (MMEngine's ``runner.register_hook``)."""
        self.hooks.add(hook)

    # -- the view hooks get (RunView) ---------------------------------------------------------
    @property
    def epoch(self) -> int:
        return self.state.epoch

    @property
    def iter(self) -> int:
        return self.state.iter

    @property
    def inner_iter(self) -> int:
        return self.state.inner_iter

    @property
    def val_evaluator(self) -> Evaluator | None:
        return self.val_loop.evaluator if self.val_loop is not None else None

    @property
    def test_evaluator(self) -> Evaluator | None:
        return self.test_loop.evaluator if self.test_loop is not None else None

    @property
    def last_metrics(self) -> dict[str, float]:
        return self.state.last_metrics

    @property
    def metric_history(self) -> list[dict[str, float]]:
        return self.state.metric_history

    @property
    def max_epochs(self) -> int:
        """The run's length in epochs (0 for an iteration-based run)."""
        return self.train_loop.max_epochs if self.train_loop is not None else 0

    @property
    def iters_per_epoch(self) -> int:
        return len(self.train_dataloader) if self.train_dataloader is not None else 0

    @property
    def max_iters(self) -> int:
        """The run's length in iterations."""
        return self.train_loop.max_iters if self.train_loop is not None else 0

    def request_stop(self) -> None:
        """End training after the current epoch (or iteration, for an iteration-based run)."""
        self.state.stop_requested = True

    # -- checkpoints --------------------------------------------------------------------------
    def save_checkpoint(
        self,
        filename: str,
        *,
        directory: Path | None = None,
        save_optimizer: bool = True,
        save_param_scheduler: bool = True,
        pointer: bool = True,
        position: tuple[int, int, int] | None = None,
        extra_meta: Mapping[str, Any] | None = None,
    ) -> Path:
        """Write a checkpoint atomically (into ``work_dir`` by default); point ``last_checkpoint`` at it.

        ``position``: ``(epoch, iter, inner_iter)`` done (default: the run state's, between two iterations).
        """
        self.nonfinite_guard.check(self.state)  # never save weights a NaN/inf loss has reached
        sharded = is_sharded(self.model)
        if sharded:  # FSDP2: a directory written through torch.distributed.checkpoint, by every rank
            filename = sharded_name(filename)
        at = self.state.position()
        if position is not None:
            at = at.model_copy(update=dict(zip(("epoch", "iter", "inner_iter"), position, strict=True)))
        state = checkpoints.checkpoint_state(
            at,
            seed=self.seed,
            cfg=self.cfg,
            model=self.model,
            hooks=self.hooks.hooks,
            optim_wrapper=self.optim_wrapper if save_optimizer else None,
            schedulers=self.schedulers if save_param_scheduler else None,
            extra_meta=extra_meta,
        )
        self.hooks.before_save_checkpoint(self, state)
        path = (directory or self.work_dir) / filename
        if sharded:
            optimizer = self.optim_wrapper.optimizer if isinstance(self.optim_wrapper, OptimWrapper) else None
            save_sharded(state, path, self.model, optimizer if save_optimizer else None)
            if pointer and self.rank == 0:
                write_text_atomic(self.work_dir / "last_checkpoint", checkpoints.pointer_text(path, self.work_dir))
            return path
        if self.rank != 0:
            return path  # rank 0 writes (every rank holds the same weights)
        save_checkpoint(state, path)
        if pointer:
            write_text_atomic(self.work_dir / "last_checkpoint", checkpoints.pointer_text(path, self.work_dir))
        return path

    def publish_checkpoint(self, path: Path, keys: list[str]) -> Path:
        """A copy of ``path`` holding only ``keys`` (e.g. meta and state_dict), for release."""
        if self.rank != 0:
            return path.with_name(CheckpointHookConfig.published_file(path.name))  # rank 0 writes it
        if is_sharded_checkpoint(path):  # one file, its tensors gathered whole
            published = path.with_name(CheckpointHookConfig.published_file(path.name))
            save_checkpoint({k: v for k, v in load_full(path).items() if k in keys}, published)
            return published
        return publish_checkpoint(path, keys)

    def load_weights(self, spec: LoadFrom) -> None:
        """``load_from``: load model weights only; strict by default, naming every mismatch."""
        loaded = None
        if is_sharded_checkpoint(Path(spec.path)):  # a sharded (FSDP2) checkpoint, gathered whole
            try:
                loaded = load_full(Path(spec.path))
            except CheckpointError as e:
                raise refuse("load_from", str(e), spec.path) from e
        checkpoint, problems = load_weights(self.model, spec, self.device, loaded)
        if any(p.severity == "error" for p in problems):
            headline = "does not fit the model" if checkpoint else "cannot be loaded as model weights"
            raise ConfigError(problems, title=f"load_from {spec.path!r} {headline}")
        for problem in problems:
            self.logger.warning("partial load_from", detail=problem.message)
        self.hooks.after_load_checkpoint(self, checkpoint)
        self.logger.info("loaded weights", load_from=spec.path, skipped=len(problems))
