"""``migrate``'s handling of MMEngine's ``visualizer`` and ``default_hooks.visualization``.

MMEngine's ``visualizer = dict(type='Visualizer', vis_backends=[...])`` (or an OpenMMLab task visualizer:
``UniversalVisualizer``, ``DetLocalVisualizer``, ...) becomes typedrunner's ``Visualizer`` with the same
backends. typedrunner's visualizer sends scalars to its backends and draws no images, so a task
visualizer's type is replaced (one line saying so) and its drawing arguments are left out. Each backend
typedrunner has keeps its arguments, validated by its schema here (an argument it does not take is one
line; a value it refuses leaves the backend out, with the reason); a backend it does not have is one line.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter, ValidationError

from typedrunner.config.base import problems_from
from typedrunner.config.visualizer import VisBackend

__all__ = ["carry_visualization_hook", "carry_visualizer"]

BACKENDS = ("LocalVisBackend", "TensorboardVisBackend", "MLflowVisBackend", "WandbVisBackend")
_NO_IMAGES = "typedrunner's visualizer logs scalars, it draws no images"
_MMENGINE_ARGUMENTS = {
    "img_save_dir": f"where MMEngine saves drawn images; {_NO_IMAGES}",
    "config_save_file": "typedrunner's LocalVisBackend always writes config.json",
    "scalar_save_file": "typedrunner's LocalVisBackend always writes scalars.json",
    "watch_kwargs": "typedrunner does not call wandb.watch",
    "log_code_name": "typedrunner does not log code to wandb",
    "define_metric_cfg": "typedrunner does not call wandb.define_metric",
    "commit": "typedrunner commits each logged group",
    "artifact_suffix": "typedrunner logs no MLflow artifacts",
    "tracked_config_keys": "typedrunner logs the whole validated config as params (params: false for none)",
}
_WANDB_INIT = ("project", "group", "name", "tags", "mode")
"""``wandb.init`` arguments (MMEngine's ``init_kwargs``) that typedrunner's WandbVisBackend takes as its own."""
_ADAPTER: TypeAdapter[Any] = TypeAdapter(VisBackend)


def _wandb_init(backend: dict[str, Any], path: str, notes: list[str]) -> None:
    """MMEngine's ``init_kwargs`` (passed to ``wandb.init``) as the backend's own arguments."""
    init = backend.pop("init_kwargs", None)
    if not isinstance(init, dict):
        if init is not None:
            notes.append(f"{path}.init_kwargs: not a mapping of wandb.init arguments")
        return
    for key, value in init.items():
        if key in _WANDB_INIT and key not in backend:
            backend[key] = value
        else:
            notes.append(
                f"{path}.init_kwargs.{key}: a wandb.init argument typedrunner does not pass "
                f"(it takes {', '.join(_WANDB_INIT)})"
            )


def _backend(value: Any, path: str, notes: list[str]) -> dict[str, Any] | None:
    """The backend as typedrunner's (arguments it does not take left out), or None when it is left out."""
    name = value.get("type") if isinstance(value, dict) else None
    if not isinstance(name, str):
        notes.append(f"{path}: not a backend ({{type: ...}} with one of {', '.join(BACKENDS)})")
        return None
    if name not in BACKENDS:
        notes.append(f"{path} ({name}): typedrunner has no such backend (it has {', '.join(BACKENDS)})")
        return None
    backend = dict(value)
    if name == "WandbVisBackend":
        _wandb_init(backend, path, notes)
    while True:
        try:
            _ADAPTER.validate_python(backend)
        except ValidationError as e:
            problem = problems_from(e, backend)[0]
            key = problem.path.split(".")[0]
            if problem.message.startswith("unknown key") and "." not in problem.path and key in backend:
                del backend[key]
                notes.append(f"{path}.{key}: {_MMENGINE_ARGUMENTS.get(key, problem.message)}")
                continue
            notes.append(f"{path} ({name}): {problem.path + ': ' if problem.path else ''}{problem.message}")
            return None
        return backend


def carry_visualizer(data: dict[str, Any]) -> list[str]:
    """``data['visualizer']`` as typedrunner's ``Visualizer`` (removed when nothing of it carries over);
    one line per thing left out or replaced."""
    value = data.get("visualizer")
    if not isinstance(value, dict):
        return []  # None or a wrong value: validation says what is wrong with it
    notes: list[str] = []
    kind = value.get("type", "Visualizer")
    if kind != "Visualizer":
        notes.append(
            f"visualizer.type ({kind}): replaced by Visualizer, which sends every scalar to the same backends "
            "(typedrunner draws no images)"
        )
    for key in value:
        if key not in ("type", "vis_backends"):
            notes.append(f"visualizer.{key}: not an argument of typedrunner's Visualizer (it takes vis_backends)")
    given = value.get("vis_backends")
    if not isinstance(given, (list, tuple)) or not given:
        notes.append("visualizer: no vis_backends (MMEngine's visualizer sends its scalars nowhere without them)")
        del data["visualizer"]
        return notes
    backends = [_backend(b, f"visualizer.vis_backends[{i}]", notes) for i, b in enumerate(given)]
    kept = [b for b in backends if b is not None]
    if kept:
        data["visualizer"] = {"type": "Visualizer", "vis_backends": kept}
    else:
        notes.append("visualizer: none of its backends carried over (above)")
        del data["visualizer"]
    return notes


def carry_visualization_hook(data: dict[str, Any]) -> list[str]:
    """MMEngine's ``default_hooks.visualization`` (``VisualizationHook`` and the OpenMMLab task variants)
    left out, with the reason."""
    hooks = data.get("default_hooks")
    if not isinstance(hooks, dict) or "visualization" not in hooks:
        return []
    hook = hooks.pop("visualization")
    if hook is None:
        return []  # switched off: nothing to carry
    kind = f" ({hook['type']})" if isinstance(hook, dict) and isinstance(hook.get("type"), str) else ""
    return [f"default_hooks.visualization{kind}: draws predictions on validation and test images; {_NO_IMAGES}"]
