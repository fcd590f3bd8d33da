"""Checks across fields that no single schema can make. Findings are data: a list of ``Problem``."""

from __future__ import annotations

from typedrunner.config.runner import RunnerConfig
from typedrunner.errors import Problem

__all__ = ["cross_field_problems"]

_TRIOS = {
    "train": ("train_dataloader", "train_cfg", "optim_wrapper"),
    "val": ("val_dataloader", "val_cfg", "val_evaluator"),
    "test": ("test_dataloader", "test_cfg", "test_evaluator"),
}


def cross_field_problems(cfg: RunnerConfig) -> list[Problem]:
    """Everything wrong between fields: incomplete trios (a part that would never take effect)."""
    problems: list[Problem] = []
    for stage, keys in _TRIOS.items():
        given = [k for k in keys if getattr(cfg, k) is not None]
        if given and len(given) < len(keys):
            for key in keys:
                if key not in given:
                    problems.append(
                        Problem(
                            key,
                            f"required because {', '.join(given)} {'is' if len(given) == 1 else 'are'} set "
                            f"(the {stage} trio {', '.join(keys)} is all or none)",
                        )
                    )
    return problems
