"""Names to classes: the registries a config's ``type`` is looked up in, and ``Lazy`` components
checked against their constructors. Pure Python: nothing here imports torch, Hydra or pydantic models
of the Runner's arguments."""

from typedrunner.registry.registries import (
    DATA_SAMPLERS,
    DATASETS,
    FUNCTIONS,
    HOOKS,
    LOOPS,
    METRICS,
    MODELS,
    OPTIMIZERS,
    PARAM_SCHEDULERS,
    Registry,
    import_object,
    object_path,
)

__all__ = [
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
