"""The composition boundary: a Hydra ``DictConfig`` becomes a plain dict, then a ``RunnerConfig``.

Nothing past this module sees a ``DictConfig`` or a ``ListConfig``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from typedrunner.config.runner import RunnerConfig
from typedrunner.errors import ConfigError, Problem

__all__ = ["compose", "to_plain", "to_runner_config"]

# Keys of the composed config that steer the command line, not the Runner.
CLI_KEYS = ("check",)


def to_plain(cfg: DictConfig) -> dict[str, Any]:
    """Resolve interpolations and turn the config into plain dicts and lists."""
    try:
        data = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or ""
        raise ConfigError([Problem(str(key), str(e).splitlines()[0])]) from None
    assert isinstance(data, dict)  # a DictConfig always converts to a dict
    return {str(k): v for k, v in data.items()}


def to_runner_config(cfg: DictConfig) -> tuple[RunnerConfig, bool]:
    """Validate a composed config; also return the command line's ``check`` flag."""
    data = to_plain(cfg)
    check = data.pop("check", False)
    if not isinstance(check, bool):
        raise ConfigError([Problem("check", "must be true or false", check)])
    return RunnerConfig.from_dict(data), check


def compose(overrides: Sequence[str] = (), config_dir: str | None = None) -> DictConfig:
    """Compose ``conf/`` with Hydra's compose API (for tests and notebooks), as the CLI would."""
    from pathlib import Path

    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    directory = str(Path(config_dir or "conf").resolve())
    overrides = list(overrides)
    if not any(o.lstrip("+~").startswith("work_dir=") for o in overrides):
        # conf/config.yaml points work_dir at Hydra's run directory, which exists only inside a
        # Hydra run: outside one, fall back to RunnerConfig's default (work_dirs/<experiment_name>).
        overrides.append("work_dir=null")
    with initialize_config_dir(config_dir=directory, version_base="1.3"):
        return hydra_compose(config_name="config", overrides=overrides, return_hydra_config=False)
