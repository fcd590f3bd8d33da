"""Hydra's run mode without a composition to read it (issue 14: start-up).

Before every run or sweep, ``hydra.main`` calls ``Hydra.get_mode`` (``hydra/_internal/utils.py``,
Hydra 1.3), which composes the whole config in multirun mode only to read ``hydra.mode``, throws the
config away, and then ``Hydra.run`` / ``Hydra.multirun`` compose it again: about a quarter of
typedrunner's start-up above torch's own. ``hydra.mode`` is ``None`` (Hydra's ``HydraConf``) unless an
override or a config Hydra can load sets it; then ``get_mode`` returns ``None`` and Hydra picks the
mode from ``-m`` as it always does.

:func:`mode_is_unset` tells, without composing, that nothing can set it: no override names ``mode``
or assigns the whole ``hydra`` node, no ``.yaml`` file of any config source (the config directory,
Hydra's own package, a plugin's, ``--config-dir``) has a top-level ``mode`` key or a ``hydra.mode``
key set to anything but null (read as text; the few files holding the word ``mode`` or a YAML escape
are loaded by Hydra's own config source to look at their keys), no config in Hydra's ``ConfigStore``
has one, and nothing adds a config source during composition (``hydra.searchpath``). A config sets
``hydra.mode`` only through one of these: its top-level ``hydra.mode`` in the root package, or its
top-level ``mode`` when it is placed in the ``hydra`` package (a header or a defaults list can do
that to any config). Anything it cannot tell (another kind of config source, a file it cannot read)
leaves the question to Hydra's ``get_mode``, which composes.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["mode_is_unset", "reading_mode_without_composing"]

_MAY_NAME_MODE = re.compile(r"\bmode\b|\\")
"""A YAML file can have a key ``mode`` only if it holds the word, or writes it with an escape."""
_OVERRIDE_KEY = re.compile(r"^[+~]*([^=@]*)")


def _child(node: Any, key: str) -> Any:
    """The node at ``key`` of the DictConfig ``node`` (None if it has no such key)."""
    from omegaconf import DictConfig

    # not `key in node`: a DictConfig says False for a key whose value is ??? or null
    return node._get_node(key) if isinstance(node, DictConfig) and key in node.keys() else None  # noqa: SIM118


def _set(node: Any, key: str) -> bool:
    """Whether the DictConfig ``node`` has ``key`` with a value other than null (as written: an
    interpolation or ``???`` counts as set)."""
    child = _child(node, key)
    return child is not None and child._value() is not None


def _sets_mode(config: Any) -> bool:
    """Whether the loaded config ``config`` could set ``hydra.mode`` wherever a defaults list puts it."""
    from omegaconf import DictConfig

    if not isinstance(config, DictConfig):
        return True  # not a mapping: let Hydra decide
    return _set(config, "mode") or _set(_child(config, "hydra"), "mode")


def _yaml_files(source: Any) -> Iterator[tuple[str, str]] | None:
    """(config path, text) of each YAML file of a file or package config source; None for any other
    kind of source."""
    scheme = source.scheme()
    if scheme == "file":
        root: Any = Path(source.path)
    elif scheme == "pkg":
        root = importlib.resources.files(source.path)
    else:
        return None

    def walk(folder: Any, prefix: str) -> Iterator[tuple[str, str]]:
        for entry in folder.iterdir():
            if entry.is_dir():
                yield from walk(entry, f"{prefix}{entry.name}/")
            elif entry.name.endswith(".yaml"):  # the only extension of version_base 1.2 and later
                yield f"{prefix}{entry.name}", entry.read_text(encoding="utf-8")

    return walk(root, "") if root.is_dir() else iter(())


def _stored_configs(repo: dict[str, Any]) -> Iterator[Any]:
    """Every ConfigNode in the ConfigStore's tree."""
    from hydra.core.config_store import ConfigNode

    for value in repo.values():
        if isinstance(value, ConfigNode):
            yield value
        elif isinstance(value, dict):
            yield from _stored_configs(value)


def mode_is_unset(hydra: Any, overrides: list[str]) -> bool:
    """True when no override and no config ``hydra`` (a ``hydra._internal.hydra.Hydra``) can load
    sets ``hydra.mode``: its composition would have ``hydra.mode`` null, and ``Hydra.get_mode``
    would return None. False when that cannot be told without composing."""
    from hydra.core.config_store import ConfigStore

    for override in overrides:
        key = _OVERRIDE_KEY.match(override)
        if _MAY_NAME_MODE.search(override) or "searchpath" in override or (key and key.group(1).strip() == "hydra"):
            return False
    try:
        for source in hydra.config_loader.get_sources():
            if source.scheme() == "structured":
                if source.path:  # a module to import, which may store more configs
                    return False
                continue
            files = _yaml_files(source)
            if files is None:
                return False
            for path, text in files:
                if "searchpath" in text:
                    return False
                if _MAY_NAME_MODE.search(text):
                    loaded = source.load_config(path)
                    if _sets_mode(loaded.config):
                        return False
        for stored in _stored_configs(ConfigStore.instance().repo):
            if _sets_mode(stored.node) or _set(_child(stored.node, "hydra"), "searchpath"):
                return False
    except Exception:
        return False  # a source it cannot read: Hydra's composition will say what is wrong
    return True


@contextlib.contextmanager
def reading_mode_without_composing() -> Iterator[None]:
    """While the command line runs: ``Hydra.get_mode`` returns None at once when :func:`mode_is_unset`
    (what its composition would have read), and composes as before otherwise."""
    from hydra._internal.hydra import Hydra

    original = Hydra.get_mode

    def get_mode(self: Hydra, config_name: str | None, overrides: list[str]) -> Any:
        if mode_is_unset(self, overrides):
            return None
        return original(self, config_name, overrides)

    Hydra.get_mode = get_mode  # type: ignore[method-assign]
    try:
        yield
    finally:
        Hydra.get_mode = original  # type: ignore[method-assign]
