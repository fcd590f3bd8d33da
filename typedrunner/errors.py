"""The errors typedrunner raises, and the one place a list of problems is rendered for a user."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ConfigError",
    "ContractError",
    "Problem",
    "TypedRunnerError",
    "did_you_mean",
    "format_path",
]


class TypedRunnerError(Exception):
    """Base class of every error typedrunner raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a configuration: where, what was given, what would be valid."""

    path: str
    """Dotted config path, e.g. ``train_cfg.max_epochs`` (empty for the whole config)."""
    message: str
    """What is wrong and, when known, how to fix it."""
    value: Any = None
    """The offending value, when there is one."""
    source: str | None = None
    """Where the value came from (a config-group file, a command-line override), when known."""

    def render(self) -> str:
        where = self.path or "<config>"
        line = f"{where}: {self.message}"
        if self.value is not None and not _is_unknown_key(self.message) and repr(self.value) not in self.message:
            line += f" (got {_short_repr(self.value)})"
        if self.source:
            line += f"  [from {self.source}]"
        return line


class ConfigError(TypedRunnerError):
    """A configuration that does not validate. Holds **every** problem found, not just the first."""

    def __init__(self, problems: Sequence[Problem], *, title: str = "invalid configuration") -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        self.title = title
        super().__init__(self.render())

    def render(self) -> str:
        n = len(self.problems)
        head = f"{self.title}: {n} problem{'s' if n != 1 else ''}"
        return "\n".join([head, *("  " + p.render() for p in self.problems)])


class ContractError(TypedRunnerError):
    """The data does not flow from dataloader through model to metrics as the contract requires."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        body = "\n".join("  " + p.render() for p in self.problems)
        super().__init__(f"data-flow contract violated:\n{body}")


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """``'; did you mean max_epochs?'`` when a close candidate exists, else ``''``."""
    options = list(candidates)
    lowered = word.lower()
    same_case = [c for c in options if c.lower() == lowered]
    prefixed = [c for c in options if len(word) >= 3 and c.lower().startswith(lowered)]
    close = (
        same_case
        or (prefixed if len(prefixed) == 1 else [])
        or difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    )
    return f"; did you mean {close[0]}?" if close else ""


def format_path(loc: Iterable[int | str]) -> str:
    """``('param_scheduler', 0, 'gamma')`` -> ``param_scheduler[0].gamma``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _is_unknown_key(message: str) -> bool:
    return message.startswith("unknown key")


def _short_repr(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
