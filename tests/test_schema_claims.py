"""Every checkable claim of the default hooks' schema docstrings, against a real run.

The schemas in ``typedrunner.config.hooks`` and ``typedrunner.config.logging`` are where the
built-in hooks' settings and defaults are written (once): their docstrings ship as the JSON Schema
descriptions and the ``--help`` text. Each entry of ``CLAIMS`` names a schema class or field, a
phrase its docstring must hold, and a check that trains a small toy run (3 epochs of 4 iterations)
and reads back what it wrote: ``scalars.jsonl``, ``run.log``, the checkpoints. A docstring edited
into a lie fails the phrase; behaviour that drifts from the docstring fails the check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pydantic
import pytest

from tests.schema_claims import (
    check_checkpoint_by_epoch,
    check_checkpoint_class,
    check_checkpoint_filename_tmpl,
    check_checkpoint_interval,
    check_checkpoint_max_keep_ckpts,
    check_checkpoint_out_dir,
    check_checkpoint_published_keys,
    check_checkpoint_rule,
    check_checkpoint_save_begin,
    check_checkpoint_save_best,
    check_checkpoint_save_last,
    check_checkpoint_save_optimizer,
    check_checkpoint_save_param_scheduler,
    check_default_checkpoint,
    check_default_hooks_class,
    check_default_logger,
    check_default_param_scheduler,
    check_default_runtime_info,
    check_default_sampler_seed,
    check_default_timer,
    check_log_processor_by_epoch,
    check_log_processor_num_digits,
    check_log_processor_window_size,
    check_logger_class,
    check_logger_ignore_last,
    check_logger_interval,
    check_param_scheduler_class,
    check_runtime_info_class,
    check_sampler_seed_class,
    check_timer_class,
)
from typedrunner import ConfigError, RunnerConfig
from typedrunner.config import hooks as schema
from typedrunner.config.hooks import DefaultHooks
from typedrunner.config.logging import LogProcessor
from typedrunner.testing import toy_config


# ----------------------------------------------------------------------------------------------
# The table
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Claim:
    """A docstring of ``schema`` (its class's, or ``field``'s) holds ``phrase``; ``check`` shows it."""

    schema: type[pydantic.BaseModel]
    field: str | None
    phrase: str
    check: Callable[[Path], None]

    @property
    def id(self) -> str:
        return f"{self.schema.__name__}.{self.field}" if self.field else self.schema.__name__

    def docstring(self) -> str:
        text = self.schema.model_fields[self.field].description if self.field else self.schema.__doc__
        return " ".join((text or "").split())


CLAIMS = [
    Claim(
        schema.LoggerHook,
        None,
        "Log training scalars every ``interval`` iterations and every validation's metrics",
        check_logger_class,
    ),
    Claim(schema.LoggerHook, "interval", "Log every this many iterations", check_logger_interval),
    Claim(
        schema.LoggerHook,
        "ignore_last",
        "Skip the last iterations of an epoch that do not fill an interval",
        check_logger_ignore_last,
    ),
    Claim(
        schema.CheckpointHook,
        None,
        "Save checkpoints (``epoch_N.pth`` or ``iter_N.pth``), the ``last_checkpoint`` pointer, and the best",
        check_checkpoint_class,
    ),
    Claim(
        schema.CheckpointHook,
        "interval",
        "Save every this many epochs (or iterations, with ``by_epoch: false``)",
        check_checkpoint_interval,
    ),
    Claim(
        schema.CheckpointHook,
        "by_epoch",
        "Count ``interval`` in epochs (True) or iterations (False)",
        check_checkpoint_by_epoch,
    ),
    Claim(
        schema.CheckpointHook,
        "save_begin",
        "Save only after this many epochs (or iterations)",
        check_checkpoint_save_begin,
    ),
    Claim(
        schema.CheckpointHook,
        "save_last",
        "Always save at the end of training, whatever the interval",
        check_checkpoint_save_last,
    ),
    Claim(
        schema.CheckpointHook,
        "max_keep_ckpts",
        "Keep at most this many periodic checkpoints (-1: all)",
        check_checkpoint_max_keep_ckpts,
    ),
    Claim(schema.CheckpointHook, "save_optimizer", "Include the optimizer state", check_checkpoint_save_optimizer),
    Claim(
        schema.CheckpointHook,
        "save_param_scheduler",
        "Include the parameter schedulers' state",
        check_checkpoint_save_param_scheduler,
    ),
    Claim(
        schema.CheckpointHook,
        "save_best",
        "Metric key(s) whose best value keeps a ``best_<key>.pth`` (``auto``: the first metric)",
        check_checkpoint_save_best,
    ),
    Claim(
        schema.CheckpointHook,
        "rule",
        "None: inferred from the key: ``loss``/``error`` less, else greater",
        check_checkpoint_rule,
    ),
    Claim(schema.CheckpointHook, "out_dir", "Directory for checkpoints (None: ``work_dir``)", check_checkpoint_out_dir),
    Claim(
        schema.CheckpointHook,
        "filename_tmpl",
        "Checkpoint file name with one ``{}`` for the epoch or iteration (default ``epoch_{}.pth`` / ``iter_{}.pth``)",
        check_checkpoint_filename_tmpl,
    ),
    Claim(
        schema.CheckpointHook,
        "published_keys",
        "At the end, also write ``<last>_published.pth`` holding only these keys",
        check_checkpoint_published_keys,
    ),
    Claim(
        schema.RuntimeInfoHook,
        None,
        "Log which hooks handle each event, in call order, when the run starts (at DEBUG level)",
        check_runtime_info_class,
    ),
    Claim(
        schema.IterTimerHook,
        None,
        "Measure each training iteration's time and data-loading time (logged as ``time``, ``data_time`` and ``eta_s``",
        check_timer_class,
    ),
    Claim(
        schema.ParamSchedulerHook,
        None,
        "Step the parameter schedulers (per epoch or per iteration, as each is configured)",
        check_param_scheduler_class,
    ),
    Claim(
        schema.DistSamplerSeedHook,
        None,
        "Tell the sampler which epoch it is, so each epoch is shuffled differently",
        check_sampler_seed_class,
    ),
    Claim(DefaultHooks, None, "set one to ``null`` to remove it", check_default_hooks_class),
    Claim(
        DefaultHooks,
        "runtime_info",
        "The hooks' call order, logged at DEBUG level when the run starts",
        check_default_runtime_info,
    ),
    Claim(
        DefaultHooks,
        "timer",
        "Iteration timing (null: no ``time``, ``data_time`` or ``eta_s`` in the logs)",
        check_default_timer,
    ),
    Claim(DefaultHooks, "sampler_seed", "Per-epoch shuffling seed", check_default_sampler_seed),
    Claim(DefaultHooks, "logger", "Logging of scalars and metrics", check_default_logger),
    Claim(DefaultHooks, "param_scheduler", "Stepping of ``param_scheduler``", check_default_param_scheduler),
    Claim(DefaultHooks, "checkpoint", "Checkpoint saving", check_default_checkpoint),
    Claim(
        LogProcessor,
        "window_size",
        "Training scalars are averaged over this many iterations at each log point",
        check_log_processor_window_size,
    ),
    Claim(
        LogProcessor,
        "num_digits",
        "Significant digits of logged floats in the human log",
        check_log_processor_num_digits,
    ),
    Claim(
        LogProcessor,
        "by_epoch",
        "Show progress as epoch and iteration within the epoch",
        check_log_processor_by_epoch,
    ),
]


@pytest.mark.parametrize("claim", CLAIMS, ids=[c.id for c in CLAIMS])
def test_docstring_claim_holds(claim: Claim, tmp_path: Path) -> None:
    """The docstring says it, and a real run does it."""
    assert claim.phrase in claim.docstring(), f"{claim.id}'s docstring no longer says {claim.phrase!r}"
    claim.check(tmp_path)


def test_log_processor_by_epoch_false_is_refused_not_ignored(tmp_path: Path) -> None:
    """``log_processor.by_epoch: false`` has no layout of its own yet: it is refused as not supported
    yet (exit 2), never silently ignored."""
    data = {**dict(toy_config(tmp_path)), "log_processor": {"by_epoch": False}}
    with pytest.raises(ConfigError) as error:
        RunnerConfig.from_dict(data)
    assert [p.path for p in error.value.problems] == ["log_processor.by_epoch"]
    assert "not supported yet" in error.value.problems[0].message
    assert RunnerConfig.from_dict({**data, "log_processor": {"by_epoch": True}}).log_processor.by_epoch


def test_claims_are_distinct() -> None:
    ids = [c.id for c in CLAIMS]
    assert len(ids) == len(set(ids))
    for claim in CLAIMS:
        assert claim.field is None or claim.field in claim.schema.model_fields
