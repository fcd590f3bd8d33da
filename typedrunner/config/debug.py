"""``debug``: short runs that check a pipeline end to end (Lightning's ``fast_dev_run``,
``limit_train_batches``, ``limit_val_batches`` and ``overfit_batches``, same names, same meaning).

The ``debug`` config group sets them: ``debug=fast`` (``fast_dev_run: 2``) and ``debug=overfit``
(``overfit_batches: 2``). They are for debugging: a run with any of them set is not a real run.
"""

from __future__ import annotations

from pydantic import Field

from typedrunner.config.base import ConfigModel

__all__ = ["DebugCfg"]


class DebugCfg(ConfigModel):
    """``debug``: shorten a run to check that everything fits together."""

    fast_dev_run: int | None = Field(default=None, ge=1)
    """Run this many batches of train, val and test data, one epoch (or this many iterations), no
    checkpoints, the loss logged every batch or so, and schedules that would never fire reported as
    warnings (None: off)."""
    limit_train_batches: int | None = Field(default=None, ge=1)
    """Train on only the samples of this many batches per epoch (None: all)."""
    limit_val_batches: int | None = Field(default=None, ge=1)
    """Validate on only the samples of this many batches (None: all)."""
    limit_test_batches: int | None = Field(default=None, ge=1)
    """Test on only the samples of this many batches (None: all)."""
    overfit_batches: int | None = Field(default=None, ge=1)
    """Train on the same samples of this many batches every epoch, in the same order (no shuffling),
    logging the loss at least once an epoch: a model that cannot drive it down has a bug (None: off)."""

    @property
    def active(self) -> bool:
        """Whether any setting shortens the run."""
        return any(v is not None for v in self.model_dump().values())

    def batches(self, stage: str) -> int | None:
        """How many batches of ``stage`` (``train``, ``val``, ``test``) data to use (None: all)."""
        limits = {"train": self.limit_train_batches, "val": self.limit_val_batches, "test": self.limit_test_batches}
        given = [n for n in (self.fast_dev_run, limits[stage]) if n is not None]
        if stage == "train" and self.overfit_batches is not None:
            given.append(self.overfit_batches)
        return min(given) if given else None
