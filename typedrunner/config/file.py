"""MMEngine's ``Config.fromfile`` for a Python config file of plain values and dicts."""

from __future__ import annotations

import inspect
import runpy
from pathlib import Path
from typing import Any

from typedrunner.config.pyconfig import read_config, uses_inheritance
from typedrunner.errors import ConfigError, Problem

__all__ = ["Config"]


class Config(dict[str, Any]):
    """A config dict with attribute access (``cfg.model``), as MMEngine's ``Config``."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as e:
            raise AttributeError(name) from e

    @classmethod
    def fromfile(cls, filename: str | Path) -> Config:
        """Run a Python config file; its public top-level values become the config.

        Imported modules, classes and functions are left out (they are how the file names things,
        not settings). A file that inherits (``_base_``, or the new-style ``with read_base():``) is
        read, not run: ``typedrunner.config.pyconfig`` evaluates its values and its bases' from their
        syntax, merged as MMEngine merges them.
        """
        path = Path(filename)
        if not path.is_file():
            raise ConfigError([Problem("", f"config file {str(path)!r} does not exist")])
        if path.suffix != ".py":
            raise ConfigError(
                [Problem("", f"{str(path)!r}: only Python config files (.py) are read by Config.fromfile")]
            )
        if uses_inheritance(path):
            return cls(read_config(path).values)
        namespace = runpy.run_path(str(path))
        values = {
            key: value
            for key, value in namespace.items()
            if not key.startswith("_") and not inspect.ismodule(value) and not _is_import(key, value)
        }
        return cls(values)


def _is_import(key: str, value: Any) -> bool:
    """A class or function bound at top level under its own name came from an import or a def."""
    return (inspect.isclass(value) or inspect.isfunction(value)) and getattr(value, "__name__", None) == key
