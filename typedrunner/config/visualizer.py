"""``visualizer``: where a run's scalars go besides ``scalars.jsonl``, in MMEngine's spelling.

``visualizer: {type: Visualizer, vis_backends: [{type: LocalVisBackend}, {type: TensorboardVisBackend}]}``.
Each backend is the real library (TensorBoard's event files through torch's ``SummaryWriter``, MLflow's
client, wandb), an optional extra. A backend whose library is not installed is refused here, at
validation, naming the extra to install: never an import error in the middle of a run.
"""

from __future__ import annotations

import importlib.util
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Discriminator, Field, Tag, field_validator, model_validator

from typedrunner.config.base import TypedComponent
from typedrunner.errors import did_you_mean

__all__ = [
    "LocalVisBackend",
    "MLflowVisBackend",
    "TensorboardVisBackend",
    "VisBackend",
    "Visualizer",
    "WandbVisBackend",
]


def _inside_run_dir(value: str) -> str:
    """A relative path below the run directory: a config never writes outside it."""
    path = PurePosixPath(value.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or "\0" in value:
        raise ValueError(f"must be a relative path inside the run directory, without '..' (got {value!r})")
    return value


RunPath = Annotated[str, AfterValidator(_inside_run_dir)]
"""A path relative to the run directory, never above it."""


def _require(backend: str, extra: str, *modules: str) -> None:
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise ValueError(
            f"{backend} needs the {', '.join(missing)} package{'s' if len(missing) > 1 else ''}, "
            f"which is not installed: pip install 'typedrunner[{extra}]'"
        )


class LocalVisBackend(TypedComponent):
    """MMEngine's local files: ``<save_dir>/scalars.json`` (one JSON object per logged group, with
    its ``step``) and ``<save_dir>/config.json``. Needs nothing beyond typedrunner."""

    type: Literal["LocalVisBackend"] = "LocalVisBackend"
    """Backend name."""
    save_dir: RunPath = "vis_data"
    """Directory, relative to the run directory."""


class TensorboardVisBackend(TypedComponent):
    """TensorBoard event files written by ``torch.utils.tensorboard.SummaryWriter``: every scalar as
    ``<mode>/<key>`` (``train/loss``, ``val/accuracy``) at the run's iteration, the config as text and
    as hparams with the final metrics (TensorBoard's HPARAMS tab compares a sweep's jobs).
    ``tensorboard --logdir outputs`` (or a sweep directory) shows them. Extra: ``tensorboard``."""

    type: Literal["TensorboardVisBackend"] = "TensorboardVisBackend"
    """Backend name."""
    save_dir: RunPath = "tensorboard"
    """Directory of the event files, relative to the run directory."""

    @model_validator(mode="after")
    def _installed(self) -> TensorboardVisBackend:
        _require("TensorboardVisBackend", "tensorboard", "tensorboard")
        return self


class MLflowVisBackend(TypedComponent):
    """An MLflow run: every scalar as a metric ``<mode>/<key>`` at the run's iteration, the validated
    config as params (dotted keys), the final and best metrics as ``final/<key>`` and ``best/<key>``.
    Every job of a sweep is a run of the same experiment, in one store. Extra: ``mlflow``."""

    type: Literal["MLflowVisBackend"] = "MLflowVisBackend"
    """Backend name."""
    tracking_uri: str | None = None
    """Where runs are stored (any MLflow tracking URI, e.g. ``http://host:5000``). None: a sqlite store
    ``mlflow.db`` in the run directory (in a sweep: in the sweep directory, shared by its jobs)."""
    exp_name: str | None = None
    """The MLflow experiment (None: ``experiment_name``)."""
    run_name: str | None = None
    """The run's name (None: the run directory's name; in a sweep, the job's overrides)."""
    tags: dict[str, str] = Field(default_factory=dict)
    """Tags set on the run."""
    params: bool = True
    """Log the validated config as params."""

    @model_validator(mode="after")
    def _installed(self) -> MLflowVisBackend:
        modules = ["mlflow"]
        if self.tracking_uri is None or self.tracking_uri.startswith("sqlite:"):
            modules += ["sqlalchemy", "alembic"]  # MLflow's sqlite store
        _require("MLflowVisBackend", "mlflow", *modules)
        return self


class WandbVisBackend(TypedComponent):
    """A Weights & Biases run: every scalar as ``<mode>/<key>`` at the run's iteration, the validated
    config as the run's config, the final and best metrics in its summary. Offline by default (files
    under ``<save_dir>/wandb``, upload later with ``wandb sync``); every job of a sweep is in one
    group. Extra: ``wandb``."""

    type: Literal["WandbVisBackend"] = "WandbVisBackend"
    """Backend name."""
    save_dir: RunPath = "."
    """The directory wandb writes its ``wandb/`` folder into, relative to the run directory."""
    project: str | None = None
    """The W&B project (None: ``experiment_name``)."""
    group: str | None = None
    """The run group (None: none; in a sweep, the sweep directory's name)."""
    name: str | None = None
    """The run's name (None: the run directory's name; in a sweep, the job's overrides)."""
    tags: list[str] = Field(default_factory=list)
    """Tags of the run."""
    mode: Literal["offline", "online", "disabled"] = "offline"
    """``offline`` writes files only (no account, no network); ``online`` uploads as it runs."""

    @model_validator(mode="after")
    def _installed(self) -> WandbVisBackend:
        _require("WandbVisBackend", "wandb", "wandb")
        return self


def _backend_type(value: Any) -> str | None:
    name = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return name.__name__ if isinstance(name, type) else name


def _backend_tag(value: Any) -> str:
    """The union tag (in angle brackets, which error paths drop) of a backend's ``type``."""
    return f"<{_backend_type(value)}>"


VisBackend = Annotated[
    Annotated[LocalVisBackend, Tag("<LocalVisBackend>")]
    | Annotated[TensorboardVisBackend, Tag("<TensorboardVisBackend>")]
    | Annotated[MLflowVisBackend, Tag("<MLflowVisBackend>")]
    | Annotated[WandbVisBackend, Tag("<WandbVisBackend>")],
    Discriminator(_backend_tag),
]
"""One of the backends, chosen by ``type``."""

_BACKENDS = ("LocalVisBackend", "TensorboardVisBackend", "MLflowVisBackend", "WandbVisBackend")


def _local_only() -> list[VisBackend]:
    return [LocalVisBackend()]


class Visualizer(TypedComponent):
    """``visualizer``: the backends that receive every logged scalar (``scalars.jsonl`` is always written).

    User code logs its own values with ``runner.visualizer.add_scalars({...})`` (from a hook:
    ``runner.visualizer``); they reach every backend and ``scalars.jsonl``."""

    type: Literal["Visualizer"] = "Visualizer"
    """MMEngine's name for the visualizer."""
    vis_backends: list[VisBackend] = Field(default_factory=_local_only)
    """The backends, by ``type``: LocalVisBackend, TensorboardVisBackend, MLflowVisBackend, WandbVisBackend."""

    @field_validator("vis_backends", mode="before")
    @classmethod
    def _known_types(cls, value: Any) -> Any:
        """A misspelt backend gets a did-you-mean, not pydantic's list of tags."""
        if isinstance(value, list):
            for i, item in enumerate(value):
                name = _backend_type(item)
                if isinstance(item, dict) and name not in _BACKENDS:
                    raise ValueError(
                        f"[{i}].type: unknown backend {name!r}{did_you_mean(str(name), _BACKENDS)}"
                        f" (one of {', '.join(_BACKENDS)})"
                    )
        return value

    @field_validator("vis_backends", mode="after")
    @classmethod
    def _one_of_each(cls, value: list[Any]) -> list[Any]:
        names = [b.type for b in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"{', '.join(twice)} given twice (one of each: they would write to the same place)")
        return value
