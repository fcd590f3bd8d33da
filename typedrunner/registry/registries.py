"""Registries: how a ``type`` in a config names a class or function.

A ``type`` is one of
- a name registered with ``@MODELS.register_module()`` (MMEngine's spelling),
- a built-in name (typedrunner's hooks, loops and samplers; every ``torch.optim`` optimizer and
  ``torch.optim.lr_scheduler`` scheduler), imported only when it is used,
- a dotted import path such as ``my_project.models.MyModel``,
- or, in Python, the class itself.

Nothing here imports torch at module load.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, TypeVar, overload

from typedrunner.errors import did_you_mean

__all__ = [
    "CUSTOM_IMPORTS_CONTEXT",
    "DATASETS",
    "DATA_SAMPLERS",
    "FUNCTIONS",
    "HOOKS",
    "LOOPS",
    "METRICS",
    "MODELS",
    "OPTIMIZERS",
    "PARAM_SCHEDULERS",
    "Registry",
    "import_object",
    "object_path",
]

_T = TypeVar("_T")


def import_object(path: str) -> Any:
    """Import ``pkg.module.Name`` (or ``pkg.module:Name``) and return the object."""
    module_name, sep, attr = path.replace(":", ".").rpartition(".")
    if not sep or not module_name or not attr:
        raise LookupError(f"{path!r} is not a dotted import path (expected 'package.module.Name')")
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # ImportError, a relative name, or the module failing as it imports
        raise LookupError(f"cannot import module {module_name!r} for {path!r}: {type(e).__name__}: {e}") from e
    try:
        return getattr(module, attr)
    except AttributeError as e:
        public = [n for n in dir(module) if not n.startswith("_")]
        raise LookupError(f"module {module_name!r} has no attribute {attr!r}{did_you_mean(attr, public)}") from e


CUSTOM_IMPORTS_CONTEXT = "custom_imports"
"""The key of pydantic's validation context under which ``RunnerConfig.from_dict`` passes the
config's ``custom_imports`` to the components' validation (see :meth:`Registry.resolve`)."""


def _project_module(name: str, custom_imports: Collection[str]) -> bool:
    """Whether the module ``name`` is named by ``custom_imports`` and is the user's own code: not
    Python's standard library, not an installed package (site-packages), which a config naming it
    in ``custom_imports`` would not make the user's."""
    module = sys.modules.get(name)
    if name not in custom_imports or module is None or name.partition(".")[0] in sys.stdlib_module_names:
        return False
    files = [getattr(module, "__file__", None), *list(getattr(module, "__path__", []) or [])]
    parts = {part for file in files if file for part in Path(str(file)).parts}
    return bool(files[0] or len(files) > 1) and not parts & {"site-packages", "dist-packages"}


def object_path(obj: Any) -> str:
    """The dotted path that :func:`import_object` turns back into ``obj``."""
    return f"{obj.__module__}.{obj.__qualname__}"


class Registry:
    """A name -> class (or function) table, with lazily imported built-ins and a fallback module."""

    def __init__(
        self,
        name: str,
        *,
        builtins: dict[str, str] | None = None,
        fallback_module: str | None = None,
        fallback_base: str | None = None,
        variable: str | None = None,
        classes_only: bool = True,
    ) -> None:
        self.name = name
        self.classes_only = classes_only
        """A dotted-path ``type`` here must be a class: config data never names a function to call
        (collate functions excepted); Python configs may pass any callable."""
        self.variable = variable or f"{name.upper()}S"
        """The module-level name users import (``MODELS``), for messages."""
        self._entries: dict[str, Any] = {}
        self._builtins: dict[str, str] = dict(builtins or {})
        self._fallback_module = fallback_module
        self._fallback_base = fallback_base

    def __repr__(self) -> str:
        return f"Registry({self.name!r})"

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    # -- registration -------------------------------------------------------------------------
    @overload
    def register_module(
        self, name: str | None = None, force: bool = False, module: None = None
    ) -> Callable[[_T], _T]: ...

    @overload
    def register_module(self, name: str | None = None, force: bool = False, *, module: _T) -> _T: ...

    def register_module(self, name: str | None = None, force: bool = False, module: Any = None) -> Any:
        """Register a class or function, as a decorator (``@MODELS.register_module()``) or directly."""

        def register(obj: _T) -> _T:
            key = name or getattr(obj, "__name__", None)
            if not isinstance(key, str):
                raise TypeError(f"cannot register {obj!r} in {self}: give it a name")
            existing = self._entries.get(key)
            if existing is not None and existing is not obj and not force:
                raise KeyError(
                    f"{key!r} is already registered in {self} as {object_path(existing)}; pass force=True to replace it"
                )
            self._entries[key] = obj
            return obj

        if module is not None:
            return register(module)
        return register

    # -- lookup -------------------------------------------------------------------------------
    def get(self, name: str) -> Any | None:
        """The object registered (or built in) under ``name``, or ``None``."""
        if name in self._entries:
            return self._entries[name]
        if name in self._builtins:
            return import_object(self._builtins[name])
        if self._fallback_module is not None and not name.startswith("_"):
            module = importlib.import_module(self._fallback_module)
            obj = getattr(module, name, None)
            if obj is not None and self._fits_fallback(obj):
                return obj
        return None

    def name_of(self, obj: Any) -> str:
        """The short name ``obj`` has here, or its dotted import path."""
        for key, value in self._entries.items():
            if value is obj:
                return key
        path = object_path(obj)
        for key, builtin_path in self._builtins.items():
            if builtin_path == path or (
                builtin_path.partition(".")[0] in sys.modules and import_object(builtin_path) is obj
            ):
                return key
        short = getattr(obj, "__name__", None)
        if self._fallback_module is not None and isinstance(short, str) and path.startswith(self._fallback_module):
            module = importlib.import_module(self._fallback_module)
            if getattr(module, short, None) is obj:
                return short
        return path

    def registered(self) -> dict[str, Any]:
        """The names registered with ``register_module`` (not the built-ins), and their objects."""
        return dict(self._entries)

    def names(self) -> list[str]:
        """Every short name this registry resolves (imports the fallback module)."""
        out = set(self._entries) | set(self._builtins)
        if self._fallback_module is not None:
            module = importlib.import_module(self._fallback_module)
            out |= {n for n in dir(module) if not n.startswith("_") and self._fits_fallback(getattr(module, n))}
        return sorted(out)

    def resolve(self, type_: Any, custom_imports: Collection[str] = ()) -> Any:
        """Turn a config's ``type`` (name, dotted path, class or function) into the object.

        A dotted path names a class (in a registry of classes), or (in a registry of functions) a
        function registered here or defined in one of the project's modules ``custom_imports`` names.
        Raises ``LookupError`` with a did-you-mean when the name is unknown or not allowed.
        """
        if not isinstance(type_, str):
            if callable(type_):
                return type_  # given in Python: the config's author wrote code anyway
            raise LookupError(f"type must be a name, a dotted path or a class, not {type(type_).__name__}")
        found = self.get(type_)
        if found is not None:
            return found
        if "." in type_:
            return self._kind_checked(import_object(type_), type_, custom_imports)
        hint = did_you_mean(type_, self.names())
        known = ", ".join(self.names()[:12])
        if not hint:
            hint = (
                f"; register it with @{self.variable}.register_module(), give a dotted path "
                f"such as 'my_project.module.{type_}', or use one of: {known}"
                + (", ..." if len(self.names()) > 12 else "")
            )
        raise LookupError(f"unknown {self.name} type {type_!r}{hint}")

    def _kind_checked(self, obj: Any, given: str, custom_imports: Collection[str]) -> Any:
        if self.classes_only and not inspect.isclass(obj) and not isinstance(getattr(obj, "__wrapped__", None), type):
            raise LookupError(
                f"{given} is a {type(obj).__name__}, not a class: a {self.name} type must be a class "
                "(a config names what to build, never a function to call)"
            )
        if (
            not self.classes_only
            and not self._named_here(obj)
            and not _project_module(str(obj.__module__), custom_imports)
        ):
            # Config data names a function to call only if the user's code registered it, or
            # defined it in their own module named by custom_imports: never any importable callable
            # (a library function that evals its input, a class whose constructor runs a command).
            raise LookupError(
                f"{given} is not a registered {self.name}, nor defined in a module of your project named by "
                "custom_imports: config data never names an arbitrary function to call. Register it with "
                f"@{self.variable}.register_module() (in a module custom_imports names), or define it in "
                "such a module"
            )
        return obj

    def _named_here(self, obj: Any) -> bool:
        """Whether ``obj`` is registered here or is one of the built-ins."""
        return any(value is obj for value in self._entries.values()) or any(
            path.partition(".")[0] in sys.modules and import_object(path) is obj for path in self._builtins.values()
        )

    def _fits_fallback(self, obj: Any) -> bool:
        if self._fallback_base is None:
            return callable(obj)
        base = import_object(self._fallback_base)
        return inspect.isclass(obj) and issubclass(obj, base) and obj is not base


MODELS = Registry("model")
DATASETS = Registry("dataset")
METRICS = Registry("metric", builtins={})
HOOKS = Registry(
    "hook",
    builtins={
        **{
            name: f"typedrunner.parts.hooks.builtin.{name}"
            for name in ("LoggerHook", "ParamSchedulerHook", "IterTimerHook", "RuntimeInfoHook", "DistSamplerSeedHook")
        },
        "CheckpointHook": "typedrunner.parts.hooks.checkpoint.CheckpointHook",
        **{
            name: f"typedrunner.parts.hooks.extra.{name}"
            for name in ("EMAHook", "EarlyStoppingHook", "EmptyCacheHook", "SyncBuffersHook", "ProfilerHook")
        },
    },
)
LOOPS = Registry(
    "loop",
    builtins={
        "EpochBasedTrainLoop": "typedrunner.engine.loops.EpochBasedTrainLoop",
        "ValLoop": "typedrunner.engine.loops.ValLoop",
        "TestLoop": "typedrunner.engine.loops.TestLoop",
    },
)
OPTIMIZERS = Registry("optimizer", fallback_module="torch.optim", fallback_base="torch.optim.Optimizer")
PARAM_SCHEDULERS = Registry(
    "param_scheduler",
    # MMEngine's schedules that torch lacks, as torch schedulers
    builtins={
        name: f"typedrunner.parts.formulas.{name}" for name in ("PolyLR", "CosineAnnealingLR", "CosineRestartLR")
    },
    fallback_module="torch.optim.lr_scheduler",
    fallback_base="torch.optim.lr_scheduler.LRScheduler",
)
DATA_SAMPLERS = Registry(
    "sampler",
    variable="DATA_SAMPLERS",
    builtins={
        "DefaultSampler": "typedrunner.parts.data.DefaultSampler",
        "SequentialSampler": "torch.utils.data.SequentialSampler",
        "RandomSampler": "torch.utils.data.RandomSampler",
    },
)
FUNCTIONS = Registry(
    "function",
    classes_only=False,
    builtins={
        "default_collate": "torch.utils.data.default_collate",
        "pseudo_collate": "typedrunner.parts.data.pseudo_collate",
    },
)
