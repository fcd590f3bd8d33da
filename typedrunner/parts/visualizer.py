"""The visualizer and its backends: every scalar the run logs also goes to TensorBoard, MLflow, W&B or
MMEngine's local files.

Each backend is the real library, imported when the run's files open (the schema has already checked
that it is installed). Backends write only at log points (the logger's interval, each evaluation, the
end), never per iteration. User code logs its own values with :meth:`Visualizer.add_scalars`.
"""

from __future__ import annotations

import json
import time
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from typedrunner.config import visualizer as schema
from typedrunner.parts.logging import RunLogger, ScalarSink

__all__ = [
    "LocalVisBackend",
    "MLflowVisBackend",
    "RunInfo",
    "TensorboardVisBackend",
    "Visualizer",
    "WandbVisBackend",
    "flatten",
]


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists stay values."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def _tags(mode: str, values: Mapping[str, float]) -> dict[str, float]:
    return {f"{mode}/{key}": float(value) for key, value in values.items()}


class RunInfo:
    """What every backend needs to name and describe its run."""

    def __init__(self, config: Mapping[str, Any], experiment: str, run_name: str | None = None) -> None:
        self.config = dict(config)
        """The validated config, as JSON-compatible values."""
        self.experiment = experiment
        self.run_name = run_name


class LocalVisBackend:
    """MMEngine's ``vis_data/scalars.json`` (JSON lines, each with ``step``) and ``vis_data/config.json``."""

    def __init__(self, cfg: schema.LocalVisBackend, run: RunInfo) -> None:
        self.cfg, self.run = cfg, run
        self._file: Any = None

    def open(self, work_dir: Path) -> None:
        directory = work_dir / self.cfg.save_dir
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "config.json").write_text(json.dumps(self.run.config, indent=2) + "\n", encoding="utf-8")
        self._file = open(directory / "scalars.json", "a", encoding="utf-8")  # noqa: SIM115 (closed in close())

    def scalars(self, mode: str, step: int, values: Mapping[str, float]) -> None:
        self._write({**_tags(mode, values), "step": step})

    def summary(self, final: Mapping[str, float], best: Mapping[str, float], step: int) -> None:
        self._write({**_tags("final", final), **_tags("best", best), "step": step})

    def _write(self, record: Mapping[str, Any]) -> None:
        if self._file is not None:
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class TensorboardVisBackend:
    """TensorBoard event files through ``torch.utils.tensorboard.SummaryWriter``."""

    def __init__(self, cfg: schema.TensorboardVisBackend, run: RunInfo) -> None:
        self.cfg, self.run = cfg, run
        self._writer: Any = None

    def open(self, work_dir: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(log_dir=str(work_dir / self.cfg.save_dir))
        text = json.dumps(self.run.config, indent=2)
        self._writer.add_text("config", f"```\n{text}\n```")

    def scalars(self, mode: str, step: int, values: Mapping[str, float]) -> None:
        if self._writer is not None:
            for tag, value in _tags(mode, values).items():
                self._writer.add_scalar(tag, value, step)

    def summary(self, final: Mapping[str, float], best: Mapping[str, float], step: int) -> None:
        """The config as hparams, with the final and best metrics: TensorBoard's HPARAMS tab."""
        if self._writer is None:
            return
        hparams = {
            k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in flatten(self.run.config).items()
        }
        metrics = {**_tags("final", final), **_tags("best", best)}
        self._writer.add_hparams(hparams, metrics, run_name=".", global_step=step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class MLflowVisBackend:
    """One MLflow run, written through ``MlflowClient`` (metrics buffered between evaluations)."""

    _FLUSH_AT = 1000  # MLflow's log_batch limit on metrics per call

    def __init__(self, cfg: schema.MLflowVisBackend, run: RunInfo) -> None:
        self.cfg, self.run = cfg, run
        self._client: Any = None
        self.run_id: str | None = None
        self._pending: list[Any] = []

    def open(self, work_dir: Path) -> None:
        from mlflow.tracking import MlflowClient

        uri = self.cfg.tracking_uri or f"sqlite:///{(work_dir / 'mlflow.db').resolve()}"
        self._client = MlflowClient(tracking_uri=uri)
        if self.run_id is not None:  # the same runner opened again (train, then test): the same run
            self._client.update_run(self.run_id, status="RUNNING")
            return
        name = self.cfg.exp_name or self.run.experiment
        experiment = self._client.get_experiment_by_name(name)
        if experiment is None:
            # a sqlite store keeps its (unused so far) artifact root beside it, not in the working directory
            local = (
                Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts" if uri.startswith("sqlite:///") else None
            )
            try:
                experiment_id = self._client.create_experiment(
                    name, artifact_location=local.resolve().as_uri() if local is not None else None
                )
            except Exception:  # another job of the sweep created it first
                experiment = self._client.get_experiment_by_name(name)
                if experiment is None:
                    raise
                experiment_id = experiment.experiment_id
        else:
            experiment_id = experiment.experiment_id
        run = self._client.create_run(
            experiment_id, run_name=self.cfg.run_name or self.run.run_name or work_dir.name, tags=self.cfg.tags
        )
        self.run_id = run.info.run_id
        if self.cfg.params:
            from mlflow.entities import Param

            params = [
                Param(k, json.dumps(v) if not isinstance(v, str) else v) for k, v in flatten(self.run.config).items()
            ]
            for i in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
                self._client.log_batch(self.run_id, params=params[i : i + 100])

    def scalars(self, mode: str, step: int, values: Mapping[str, float]) -> None:
        self._add(_tags(mode, values), step)
        if mode != "train" or len(self._pending) >= self._FLUSH_AT:
            self._flush()

    def summary(self, final: Mapping[str, float], best: Mapping[str, float], step: int) -> None:
        self._add({**_tags("final", final), **_tags("best", best)}, step)
        self._flush()

    def _add(self, values: Mapping[str, float], step: int) -> None:
        if self._client is None:  # logged while the run's files are closed (e.g. by the model in the probe)
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._pending += [Metric(key, value, now, step) for key, value in values.items()]

    def _flush(self) -> None:
        if self._client is not None and self.run_id is not None and self._pending:
            for i in range(0, len(self._pending), self._FLUSH_AT):
                self._client.log_batch(self.run_id, metrics=self._pending[i : i + self._FLUSH_AT])
        self._pending = []

    def close(self) -> None:
        if self._client is not None and self.run_id is not None:
            self._flush()
            self._client.set_terminated(self.run_id)
        self._client = None


class WandbVisBackend:
    """One W&B run (offline by default: files only)."""

    def __init__(self, cfg: schema.WandbVisBackend, run: RunInfo) -> None:
        self.cfg, self.run = cfg, run
        self._run: Any = None
        self._id: str | None = None

    def open(self, work_dir: Path) -> None:
        import wandb

        directory = work_dir / self.cfg.save_dir
        directory.mkdir(parents=True, exist_ok=True)
        self._run = wandb.init(
            dir=str(directory),
            project=self.cfg.project or self.run.experiment,
            group=self.cfg.group,
            name=self.cfg.name or self.run.run_name or work_dir.name,
            tags=self.cfg.tags or None,
            mode=self.cfg.mode,
            config=self.run.config,
            id=self._id,
            resume="allow" if self._id is not None else None,
            settings=wandb.Settings(console="off", silent=True, disable_git=True),
        )
        self._id = self._run.id

    def scalars(self, mode: str, step: int, values: Mapping[str, float]) -> None:
        if self._run is not None:
            self._run.log(_tags(mode, values), step=step)

    def summary(self, final: Mapping[str, float], best: Mapping[str, float], step: int) -> None:
        if self._run is not None:
            self._run.summary.update({**_tags("final", final), **_tags("best", best)})

    def close(self) -> None:
        if self._run is not None:
            self._run.finish()
            self._run = None


class Visualizer:
    """The run's visualizer (MMEngine's name): fans every logged scalar out to its backends.

    From a hook, ``runner.visualizer.add_scalars({"my_metric": 0.5})`` logs a value of your own: it is
    written to ``scalars.jsonl`` and to every backend, at the run's current iteration unless ``step``
    is given.
    """

    _current: ClassVar[weakref.ref[Visualizer] | None] = None

    def __init__(self, logger: RunLogger, backends: Sequence[ScalarSink] = ()) -> None:
        self._logger = logger
        self.backends = list(backends)
        """The backends, in config order."""
        self.step = 0
        """The iteration of the last logged scalars (the default ``step`` of :meth:`add_scalars`)."""
        logger.sinks.append(self)
        Visualizer._current = weakref.ref(self)

    @classmethod
    def get_current_instance(cls) -> Visualizer:
        """The visualizer of the runner built last (MMEngine's spelling): how a model, a metric or any
        code without the runner at hand logs its own values."""
        current = cls._current() if cls._current is not None else None
        if current is None:
            raise RuntimeError("no visualizer yet: build a Runner first (its visualizer is the current one)")
        return current

    # -- the public way to log ----------------------------------------------------------------
    def add_scalars(self, scalars: Mapping[str, float], step: int | None = None, *, mode: str = "train") -> None:
        """Log ``scalars`` (name -> number) as ``<mode>/<name>`` at ``step`` (default: the current iteration)."""
        values = {str(k): float(v) for k, v in scalars.items()}
        self._logger.record(mode, self.step if step is None else step, values)

    def add_scalar(self, name: str, value: float, step: int | None = None, *, mode: str = "train") -> None:
        """Log one scalar (see :meth:`add_scalars`)."""
        self.add_scalars({name: value}, step, mode=mode)

    # -- ScalarSink: called by the run's logger ----------------------------------------------
    def open(self, work_dir: Path) -> None:
        for backend in self.backends:
            backend.open(work_dir)

    def scalars(self, mode: str, step: int, values: Mapping[str, float]) -> None:
        self.step = max(self.step, step)
        for backend in self.backends:
            backend.scalars(mode, step, values)

    def summary(self, final: Mapping[str, float], best: Mapping[str, float], step: int) -> None:
        for backend in self.backends:
            backend.summary(final, best, step)

    def close(self) -> None:
        for backend in self.backends:
            backend.close()
