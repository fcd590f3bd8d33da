"""Every exception and warning typedrunner raises, the ``Problem`` record, and the helpers that
make problems: one place to read, and change, what a user is told."""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "CheckpointError",
    "ConfigError",
    "ContractError",
    "DataLoadingError",
    "NonFiniteLossError",
    "Problem",
    "TrainingStopped",
    "TypedRunnerError",
    "TypedRunnerWarning",
    "did_you_mean",
    "format_path",
    "refuse",
    "render_problems",
    "warning",
]


class TypedRunnerError(Exception):
    """Base class of every error typedrunner raises on purpose."""


class TypedRunnerWarning(UserWarning):
    """A legal but questionable setting (a deprecated spelling, a setting with no effect here)."""


class CheckpointError(TypedRunnerError):
    """A checkpoint that cannot be written or read."""


class TrainingStopped(TypedRunnerError):
    """Training stopped on a signal (SIGTERM, SIGINT) after saving a resumable checkpoint."""

    def __init__(self, signal_name: str, checkpoint: Path | None = None) -> None:
        self.signal_name = signal_name
        self.checkpoint = checkpoint
        where = f"; resumable checkpoint {checkpoint}" if checkpoint else ""
        super().__init__(f"stopped by {signal_name}{where}")


class NonFiniteLossError(TypedRunnerError):
    """The loss became NaN or infinite."""


class DataLoadingError(TypedRunnerError):
    """A dataset or a dataloader worker failed while training or validating."""


Severity = Literal["error", "warning"]


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
    stage: str = "config"
    """Which check found it: ``config``, ``cross-field``, ``probe: train``, ``probe: val``, ..."""
    severity: Severity = "error"
    """``error`` stops the run; ``warning`` is reported and stops it only in strict mode."""

    def render(self) -> str:
        where = self.path or "<config>"
        line = f"{where}: {self.message}"
        if self.value is not None and not _is_unknown_key(self.message) and repr(self.value) not in self.message:
            line += f" (got {_short_repr(self.value)})"
        if self.source:
            line += f"  [from {self.source}]"
        return line


def render_problems(problems: Sequence[Problem], title: str) -> str:
    """The one report a user sees: errors then warnings, grouped by the stage that found them."""
    errors = [p for p in problems if p.severity == "error"]
    warnings = [p for p in problems if p.severity == "warning"]
    counts = [f"{len(errors)} error{'s' if len(errors) != 1 else ''}"] if errors else []
    if warnings:
        counts.append(f"{len(warnings)} warning{'s' if len(warnings) != 1 else ''}")
    lines = [f"{title}: {', '.join(counts) or 'no problems'}"]
    for label, group in (("", errors), ("warning: ", warnings)):
        stages: dict[str, list[Problem]] = {}
        for problem in group:
            stages.setdefault(problem.stage, []).append(problem)
        for stage, items in stages.items():
            if len(stages) > 1 or stage != "config" or label:
                lines.append(f" {label}[{stage}]")
            lines.extend(f"  {problem.render()}" for problem in items)
    return "\n".join(lines)


class ConfigError(TypedRunnerError):
    """A configuration that does not validate. Holds **every** problem found, not just the first."""

    def __init__(self, problems: Sequence[Problem], *, title: str = "invalid configuration") -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        self.title = title
        super().__init__(self.render())

    def render(self) -> str:
        return render_problems(self.problems, self.title)

    def __reduce__(self) -> tuple[Any, ...]:
        # A failed sweep job's error travels back from a joblib or submitit worker by pickle; the
        # default would rebuild it from its message alone.
        return (functools.partial(type(self), title=self.title), (self.problems,))


class ContractError(ConfigError):
    """The data does not flow from dataloader through model to metrics as the contract requires."""

    def __init__(self, problems: Sequence[Problem], *, title: str = "configuration refused before training") -> None:
        super().__init__(problems, title=title)


def refuse(path: str, message: str, value: Any = None, *, title: str = "invalid configuration") -> ConfigError:
    """A ``ConfigError`` of one problem: ``raise refuse("optim_wrapper.dtype", "float16 needs CUDA")``."""
    return ConfigError([Problem(path, message, value)], title=title)


def warning(path: str, message: str, stage: str = "config") -> Problem:
    """A finding that is reported and stops the run only in strict mode."""
    return Problem(path, message, stage=stage, severity="warning")


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
