"""``Runner``: wires the built parts together and runs the loops. Read it top to bottom."""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

import typedrunner
from typedrunner import build
from typedrunner.checkpoint import (
    load_checkpoint,
    load_weights,
    remove_stale_temporaries,
    save_checkpoint,
    write_text_atomic,
)
from typedrunner.config.env import CompileCfg
from typedrunner.config.optim import OptimWrapper as OptimWrapperConfig
from typedrunner.config.runner import LoadFrom, RunnerConfig
from typedrunner.contract import built_problems, cross_field_problems
from typedrunner.errors import ConfigError, ContractError, Problem
from typedrunner.hooks import Hook, HookList, IterTimerHook, ParamSchedulerHook, infer_rule
from typedrunner.logging import RunLogger
from typedrunner.loops import (
    EpochBasedTrainLoop,
    IterBasedTrainLoop,
    TestLoop,
    TrainLoop,
    ValLoop,
    predict_step_for,
    train_step_for,
)
from typedrunner.model import BaseDataPreprocessor, BaseModel
from typedrunner.optim import OptimWrapperDict
from typedrunner.probe import ProbeResult, preserved_state, probe_eval, probe_train
from typedrunner.resume import capture_rng, resume_runner
from typedrunner.safety import DataLoadingError, GracefulStop, NonFiniteGuard, TrainingStopped, work_dir_problems
from typedrunner.schedulers import ScheduleSlot, build_slots

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
        self.logger = RunLogger(cfg.log_level, cfg.log_processor.num_digits)

        # 2. Environment and randomness, before anything random is built.
        self.seed = self._set_randomness()
        torch.backends.cudnn.benchmark = cfg.env_cfg.cudnn_benchmark
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

        # 3. Model and data preprocessor.
        self.model: nn.Module = build.build_model(cfg.model).to(self.device)
        if cfg.compile:
            options = cfg.compile if isinstance(cfg.compile, CompileCfg) else CompileCfg()
            self.model.compile(**options.model_dump())  # in place: state_dict keys are unchanged
        self.data_preprocessor = self._data_preprocessor()
        self.train_step = train_step_for(self.model, self.data_preprocessor)

        # 4. Data.
        pin_ok = self.device.type == "cuda"
        start = cfg.env_cfg.mp_cfg.mp_start_method
        self.train_dataloader = (
            build.build_dataloader(cfg.train_dataloader, "train_dataloader", self.seed, pin_ok, start)
            if cfg.train_dataloader is not None
            else None
        )
        val_dl = (
            build.build_dataloader(cfg.val_dataloader, "val_dataloader", self.seed, pin_ok, start)
            if cfg.val_dataloader is not None
            else None
        )
        test_dl = (
            build.build_dataloader(cfg.test_dataloader, "test_dataloader", self.seed, pin_ok, start)
            if cfg.test_dataloader is not None
            else None
        )

        self.epoch = 0
        self.iter = 0
        self.inner_iter = 0
        """Batches already done in the current epoch (non-zero only inside an epoch)."""
        self.last_metrics: dict[str, float] = {}
        self.metric_history: list[dict[str, float]] = []
        self.stop_training = False
        """Set by a hook (early stopping) to end training after the current epoch or iteration."""
        self.last_val_iter = -1
        """``iter`` at the last validation during training (a resumed run knows if it is still due)."""
        self.stop_signal: str | None = None
        """Set by SIGTERM / SIGINT during training: save a checkpoint after this iteration and stop."""
        logger_hook, wrapper_cfg = cfg.default_hooks.logger, cfg.optim_wrapper
        skips = isinstance(wrapper_cfg, OptimWrapperConfig) and wrapper_cfg.nonfinite == "skip"
        self.nonfinite_guard = NonFiniteGuard(logger_hook.interval if logger_hook is not None else 10, not skips)
        self.val_loop = (
            ValLoop(self, val_dl, build.build_evaluator(cfg.val_evaluator, "val_evaluator"), self._fp16("val_cfg"))
            if val_dl is not None and cfg.val_evaluator is not None
            else None
        )
        self.test_loop = (
            TestLoop(self, test_dl, build.build_evaluator(cfg.test_evaluator, "test_evaluator"), self._fp16("test_cfg"))
            if test_dl is not None and cfg.test_evaluator is not None
            else None
        )

    def _build_training(self) -> None:
        """Steps 5-8: optimization, the train loop, hooks, then resume or pretrained weights."""
        cfg = self.cfg
        # 5. Optimization.
        self.optim_wrapper = (
            build.build_optim_wrappers(cfg.optim_wrapper, self.model, self.device, self._lr_scale())
            if cfg.optim_wrapper is not None
            else None
        )

        if isinstance(self.optim_wrapper, OptimWrapperDict) and (
            not isinstance(self.model, BaseModel) or type(self.model).train_step is BaseModel.train_step
        ):
            raise ConfigError(
                [
                    Problem(
                        "optim_wrapper",
                        "has several optimizers, so the model must be a BaseModel that defines "
                        "train_step(data, optim_wrapper) and steps each one",
                    )
                ]
            )
        # 6. The train loop.
        self.train_loop = self._train_loop()
        self.schedulers: list[ScheduleSlot] = []
        if self.optim_wrapper is not None and self.train_loop is not None:
            self.optim_wrapper.max_calls = self.train_loop.max_iters
            loop, wrappers = self.train_loop, self.optim_wrapper
            for name, path, configs in cfg.scheduler_groups():
                wrapper = wrappers[name] if isinstance(wrappers, OptimWrapperDict) else wrappers
                try:
                    self.schedulers += build_slots(configs, wrapper.optimizer, loop.max_epochs, loop.max_iters)
                except ValueError as e:
                    raise ConfigError([Problem(path, str(e))]) from e

        # 7. Hooks, last: they may look at everything above.
        hooks = build.build_default_hooks(cfg.default_hooks, cfg.log_processor)
        hooks += [build.build_hook(h, f"custom_hooks[{i}]") for i, h in enumerate(cfg.custom_hooks)]
        for hook in hooks:
            if isinstance(hook, ParamSchedulerHook):
                hook.set_slots(self.schedulers)
        self.timer = next((h for h in hooks if isinstance(h, IterTimerHook)), None)
        self.hooks = HookList(hooks)

        # 8. Resume, or pretrained weights: loaded now, so a mismatch stops us before anything is written.
        if cfg.resume:
            resume_runner(self)
        elif cfg.load_from is not None:
            self.load_weights(cfg.load_from)

    # -- entry points -------------------------------------------------------------------------
    @classmethod
    def from_cfg(cls, cfg: Mapping[str, Any] | RunnerConfig) -> Runner:
        """MMEngine's ``Runner.from_cfg``: a config dict (e.g. from ``Config.fromfile``)."""
        return cls(cfg if isinstance(cfg, RunnerConfig) else dict(cfg))

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

    def check(self) -> list[Problem]:
        """Every finding short of training: warnings from the config, checks that need the built
        parts, and the contract probe (one real batch per dataloader, without side effects)."""
        result = ProbeResult()
        # A model with its own train_step (several optimizers, a GAN) owns its loss contract.
        own_step = isinstance(self.model, BaseModel) and type(self.model).train_step is not BaseModel.train_step
        trains = self.cfg.train_cfg is not None and self.cfg.optim_wrapper is not None and not own_step
        with preserved_state(self.model, self.data_preprocessor):
            if trains and self.train_dataloader is not None:
                probe_train(self.model, self.data_preprocessor, self.train_dataloader, result)
            for loop in (self.val_loop, self.test_loop):
                if loop is not None:
                    probe_eval(
                        loop.stage, self.model, self.data_preprocessor, loop.dataloader, loop.evaluator.metrics, result
                    )
        self.metric_names = result.metric_names
        self.batch_structure = result.batches
        writes = self.cfg.train_cfg is not None and self.cfg.default_hooks.checkpoint is not None
        self.findings = [
            *self.config_warnings,
            *(work_dir_problems(self.work_dir, self.model, self.cfg.optim_wrapper is not None) if writes else []),
            *built_problems(self.cfg, self.iters_per_epoch, self.metric_names),
            *result.problems,
        ]
        return self.findings

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
        self._open_run()
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
        self.hooks.call("before_run", self)
        with GracefulStop(self):
            try:
                loop.run()
            except RuntimeError as e:
                if "DataLoader worker" not in str(e):
                    raise
                raise DataLoadingError(
                    f"a dataloader worker died: {str(e).strip().splitlines()[0]}. The last checkpoint is intact: "
                    "fix the cause (often memory: fewer workers or a smaller batch) and resume with resume=true"
                ) from e
            except TrainingStopped as stop:
                path = self.save_checkpoint(f"stopped_iter_{self.iter}.pth")
                self.logger.warning(
                    f"stopped by {stop.signal_name} after iteration {self.iter}",
                    checkpoint=str(path),
                    resume_with=f"resume=true work_dir={self.work_dir}",
                )
                raise TrainingStopped(stop.signal_name, path) from None
        self.nonfinite_guard.check(self)
        self.hooks.call("after_run", self)
        self._write_summary(time.perf_counter() - started)

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
        self._open_run()
        try:
            self.hooks.call("before_run", self)
            metrics = loop.run()
            self.hooks.call("after_run", self)
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
        self.hooks = HookList([*self.hooks.hooks, hook])

    def predict_step(self, stage: str) -> Any:
        return predict_step_for(self.model, self.data_preprocessor, stage)

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

        It holds everything needed to resume exactly: weights, optimizer, schedulers, loop position
        ``(epoch, iter, inner_iter)`` (what is done; default: the runner's counters, i.e. between two
        iterations), every RNG stream, hook state, and the validated config.
        """
        self.nonfinite_guard.check(self)  # never save weights a NaN/inf loss has reached
        epoch, iteration, inner = position if position is not None else (self.epoch, self.iter, self.inner_iter)
        state: dict[str, Any] = {
            "meta": {
                "epoch": epoch,
                "iter": iteration,
                "inner_iter": inner,
                "last_val_iter": self.last_val_iter,
                "seed": self.seed,
                "typedrunner_version": typedrunner.__version__,
                "torch_version": str(torch.__version__),
                "config": json.dumps(self.cfg.model_dump(mode="json")),
                **(extra_meta or {}),
            },
            "state_dict": self.model.state_dict(),
            "rng": capture_rng(),
            "hooks": {type(h).__name__: h.state_dict() for h in self.hooks.hooks if h.state_dict()},
        }
        if save_optimizer and self.optim_wrapper is not None:
            state["optimizer"] = self.optim_wrapper.state_dict()
        if save_param_scheduler:
            state["param_schedulers"] = [slot.state_dict() for slot in self.schedulers]
        self.hooks.call("before_save_checkpoint", self, state)
        path = (directory or self.work_dir) / filename
        save_checkpoint(state, path)
        if pointer:
            write_text_atomic(self.work_dir / "last_checkpoint", str(path.resolve()))
        return path

    def publish_checkpoint(self, path: Path, keys: list[str]) -> Path:
        """A copy of ``path`` holding only ``keys`` (e.g. meta and state_dict), for release."""
        state = load_checkpoint(path)
        published = path.with_name(f"{path.stem}_published.pth")
        save_checkpoint({k: v for k, v in state.items() if k in keys}, published)
        return published

    def load_weights(self, spec: LoadFrom) -> None:
        """``load_from``: load model weights only; strict by default, naming every mismatch."""
        checkpoint, problems = load_weights(self.model, spec, self.device)
        errors = [p for p in problems if p.severity == "error"]
        if errors:
            raise ConfigError(problems, title=f"load_from {spec.path!r} does not fit the model")
        for problem in problems:
            self.logger.warning("partial load_from", detail=problem.message)
        self.hooks.call("after_load_checkpoint", self, checkpoint)
        self.logger.info("loaded weights", load_from=spec.path, skipped=len(problems))

    # -- internals ----------------------------------------------------------------------------
    def _train_loop(self) -> TrainLoop | None:
        cfg, loader, optim_wrapper = self.cfg.train_cfg, self.train_dataloader, self.optim_wrapper
        if cfg is None or loader is None or optim_wrapper is None:
            return None
        if cfg.by_epoch:
            assert cfg.max_epochs is not None and cfg.val_interval is not None  # set by TrainLoop's validator
            return EpochBasedTrainLoop(
                self,
                loader,
                optim_wrapper,
                cfg.max_epochs,
                cfg.val_begin,
                cfg.val_interval,
                cfg.dynamic_intervals or (),
            )
        assert cfg.max_iters is not None and cfg.val_interval is not None  # set by TrainLoop's validator
        return IterBasedTrainLoop(
            self, loader, optim_wrapper, cfg.max_iters, cfg.val_begin, cfg.val_interval, cfg.dynamic_intervals or ()
        )

    def _open_run(self) -> None:
        self.logger.attach(self.work_dir)
        for path in remove_stale_temporaries(self.work_dir):
            self.logger.info("removed the temporary file of an interrupted write", path=str(path))
        config_text = json.dumps(self.cfg.model_dump(mode="json"), indent=2)
        write_text_atomic(self.work_dir / "config.json", config_text + "\n")

    def _set_randomness(self) -> int:
        rnd = self.cfg.randomness
        seed = rnd.seed if rnd.seed is not None else random.SystemRandom().randrange(2**31)
        random.seed(seed)
        torch.manual_seed(seed)
        if "numpy" in sys.modules:
            sys.modules["numpy"].random.seed(seed)
        if rnd.deterministic:
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.deterministic = True
            torch.backends.cudnn.benchmark = False
        return seed

    def _data_preprocessor(self) -> nn.Module:
        spec = self.cfg.data_preprocessor
        if spec is not None:
            preprocessor = build.build_model(spec).to(self.device)
            if isinstance(self.model, BaseModel):
                self.model.data_preprocessor = preprocessor
            return preprocessor
        own = getattr(self.model, "data_preprocessor", None)
        if isinstance(own, nn.Module):
            return own
        return BaseDataPreprocessor().to(self.device)

    def _fp16(self, key: str) -> bool:
        loop = getattr(self.cfg, key)
        if loop is None or not loop.fp16:
            return False
        if self.device.type != "cuda":
            raise ConfigError(
                [Problem(f"{key}.fp16", f"float16 autocast needs CUDA; this run is on {self.device.type}")]
            )
        return True

    def _lr_scale(self) -> float:
        scale = self.cfg.auto_scale_lr
        loader = self.cfg.train_dataloader
        if not scale.enable or scale.base_batch_size is None or loader is None:
            return 1.0
        batch_size = loader.batch_size if hasattr(loader, "batch_size") and loader.batch_size else 1
        return float(batch_size) / scale.base_batch_size

    def _write_summary(self, wall_time: float) -> None:
        best: dict[str, float] = {}
        for metrics in self.metric_history:
            for key, value in metrics.items():
                less = infer_rule(key) == "less"
                if key not in best or (value < best[key] if less else value > best[key]):
                    best[key] = value
        summary = {
            "final_metrics": self.last_metrics,
            "best_metrics": best,
            "epochs": self.epoch,
            "iters": self.iter,
            "wall_time_s": round(wall_time, 3),
            "work_dir": str(self.work_dir),
        }
        write_text_atomic(self.work_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
        self.logger.info(
            "done", **{f"final_{k}": v for k, v in self.last_metrics.items()}, wall_time_s=round(wall_time, 1)
        )
