"""The command line: a Hydra app. The only place (with ``compose.py``) that knows Hydra.

``python -m typedrunner +experiment=mlp [key=value ...] [check=true]`` composes ``./conf`` (or
``$TYPEDRUNNER_CONF``), validates the result into a ``RunnerConfig`` at one boundary, and trains.
Exit codes: 0 success; 1 a failure during training; 2 invalid configuration or contract mismatch
(nothing trained); 3 stopped by SIGTERM / SIGINT after saving a resumable checkpoint.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from typedrunner.app import ranks
from typedrunner.errors import ConfigError, TrainingStopped, TypedRunnerError

__all__ = ["main"]

EXIT_FAILED = 1
"""A failure during training (a non-finite loss, a dataset error, a checkpoint that cannot be written,
a model or a batch that raises)."""
EXIT_INVALID = 2
"""An invalid configuration or a contract mismatch: nothing trained."""
EXIT_STOPPED = 3
"""Stopped by SIGTERM or SIGINT after writing a resumable checkpoint."""
EXIT_INTERRUPTED = 130
"""Ctrl-C before training started: nothing was trained or saved (the shell's code for SIGINT)."""


def _conf_dir() -> Path:
    return Path(os.environ.get("TYPEDRUNNER_CONF", Path.cwd() / "conf")).resolve()


def _task(cfg: Any) -> float | None:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from typedrunner.app.compose import annotate_sources, for_sweep_job, to_runner_config

    hydra_cfg = HydraConfig.get()
    output_dir = Path(hydra_cfg.runtime.output_dir)
    _route_logs(hydra_cfg.runtime.choices.get("hydra/job_logging"))
    if cfg.get("help") is not None:
        _section_help(str(cfg.get("help")))
        return None
    try:
        try:
            with ranks.agreeing("validated", output_dir):  # several ranks: all pass, or all exit 2
                config, options = to_runner_config(cfg)
            if options.print_config:
                if ranks.reports():
                    print(_validated_yaml(config), end="")
                return None
            if hydra_cfg.mode == RunMode.MULTIRUN:
                job_name = hydra_cfg.job.override_dirname[:200] or f"job {hydra_cfg.job.num}"
                config = for_sweep_job(config, Path(hydra_cfg.sweep.dir), job_name)
            from typedrunner.engine.runner import Runner

            with ranks.agreeing("checked", output_dir):
                runner = Runner.checked(config, strict=options.strict)
                _check_objective(options.objective, runner.metric_names)
            if options.check and ranks.reports():
                print(_check_report(runner, runner.findings))
        except ConfigError as e:
            raise type(e)(annotate_sources(e.problems, hydra_cfg, _conf_dir()), title=e.title) from e
    except TypedRunnerError as e:
        _report(e, output_dir)
        _leave(EXIT_INVALID, e, hydra_cfg)
    except KeyboardInterrupt:
        _interrupted(hydra_cfg)
    if options.check:
        return None
    from typedrunner.app.curves import CurvesDrawer, curves_after_run

    drawer = CurvesDrawer.start() if ranks.reports() else None  # matplotlib loads beside the training
    try:
        try:
            runner.train(check=False)
        except BaseException:
            if drawer is not None:  # a run that fails or stops draws nothing: its drawer ends now
                drawer.close()
            raise
    except TrainingStopped as e:
        _report(e, output_dir)
        _leave(EXIT_STOPPED, e, hydra_cfg)
    except TypedRunnerError as e:  # a failure during training: the message, not a traceback
        _report(e, output_dir, failed=True)
        _leave(EXIT_FAILED, e, hydra_cfg)
    except Exception as e:  # a model, batch or hook going wrong after the probe: reported the same way
        _report(e, output_dir, _training_failure(e, runner), failed=True)
        _leave(EXIT_FAILED, e, hydra_cfg)
    except KeyboardInterrupt:  # a second Ctrl-C: stop at once, without the checkpoint the first asked for
        _interrupted(hydra_cfg, _stopped_at_once(Path(runner.work_dir)))
    from typedrunner.engine.distributed import shutdown

    shutdown()
    if ranks.reports():
        print(curves_after_run(Path(runner.work_dir), drawer))
    if options.objective is not None:
        return float(runner.last_metrics[options.objective]) if options.objective in runner.last_metrics else None
    return next(iter(runner.last_metrics.values()), None)


def _route_logs(job_logging: str | None) -> None:
    """``hydra/job_logging=none`` (conf's default): typedrunner's records go to its own console and
    ``run.log`` only, not to the handler Hydra leaves on the root logger. Any other choice (Hydra's
    ``default``, a user's): they propagate to the handlers it configures (console, ``<job>.log``)."""
    import logging

    from typedrunner.parts.logging import LOGGER_NAME

    logging.getLogger(LOGGER_NAME).propagate = job_logging != "none"


def _section_help(section: str) -> None:
    """``help=SECTION``: that section's fields, types, defaults and docstrings (exit 2 for a name
    that is not a section)."""
    from typedrunner.app.help import schema_help, section_names
    from typedrunner.errors import did_you_mean

    try:
        print(schema_help(section))
    except KeyError:
        print(
            f"help: {section!r} is not a section{did_you_mean(section, section_names())} "
            f"(sections: {', '.join(section_names())})",
            file=sys.stderr,
        )
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_INVALID)


def _validated_yaml(config: Any) -> str:
    """``print_config=true``: the validated config, every default filled in (``config.json``'s content)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(OmegaConf.create(config.model_dump(mode="json")))


def _check_objective(objective: str | None, metric_names: dict[str, list[str]]) -> None:
    """``objective`` must be a metric the val evaluator returns (as the probe saw them)."""
    names = metric_names.get("val", [])
    if objective is not None and objective not in names:
        from typedrunner.errors import Problem, did_you_mean

        found = f"it returns {', '.join(names)}" if names else "there is no validation"
        raise ConfigError(
            [
                Problem(
                    "objective",
                    f"not a metric the val evaluator returns ({found}){did_you_mean(objective, names)}",
                    objective,
                )
            ]
        )


def _training_failure(error: Exception, runner: Any) -> str:
    """The report of an exception that is not typedrunner's own, raised while training: what
    happened, where (1-based, as the log counts), the checkpoint to resume from, how to see more."""
    state, work_dir = runner.state, Path(runner.work_dir)
    loops = {
        tb.tb_frame.f_code.co_name
        for tb in _frames(error)
        if tb.tb_frame.f_globals.get("__name__") == "typedrunner.engine.loops"
    }
    epoch = f" (epoch {state.epoch + 1})" if getattr(runner.train_loop, "by_epoch", True) else ""
    if "_iteration" in loops:
        where = f"at iteration {state.iter + 1}{epoch}"
    elif "_validate" in loops:
        where = f"in the validation after iteration {state.iter}"
    else:
        where = f"after iteration {state.iter}" if state.iter else "before the first iteration"
    message = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
    what = f"{type(error).__name__}: {message[:300]}" if message else type(error).__name__
    checkpoint = None
    with contextlib.suppress(OSError, ValueError):
        target = (work_dir / "last_checkpoint").read_text(encoding="utf-8").strip()
        checkpoint = Path(os.path.normpath(work_dir / target)) if target else None
    if checkpoint is not None and checkpoint.is_file():
        then = f"The last checkpoint is intact ({checkpoint}): fix the cause and resume with resume=true"
        then += f" work_dir={work_dir}"
    else:
        then = "No checkpoint was written: fix the cause and run again"
    return f"training failed {where}: {what}\n{then}; HYDRA_FULL_ERROR=1 shows the traceback"


def _frames(error: BaseException) -> list[Any]:
    """The traceback entries of ``error``, outermost first."""
    tb, frames = error.__traceback__, []
    while tb is not None:
        frames.append(tb)
        tb = tb.tb_next
    return frames


def _leave(code: int, error: Exception, hydra_cfg: Any) -> None:
    """End a single run with ``code``; in a multirun, fail this job only (Hydra runs the others and
    the sweep report shows it as a failed row)."""
    from hydra.types import RunMode

    if hydra_cfg.mode == RunMode.MULTIRUN:
        raise error
    # Nothing ran that needs cleaning up: skip the interpreter's slow teardown (torch's is ~1 s).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _interrupted(
    hydra_cfg: Any, message: str = "interrupted before training started: nothing was trained or saved"
) -> None:
    """Ctrl-C while validating, probing or building, or a second one while training: say so in one
    line, not a traceback (a sweep stops, as Ctrl-C asks)."""
    from hydra.types import RunMode

    if hydra_cfg.mode == RunMode.MULTIRUN or os.environ.get("HYDRA_FULL_ERROR") == "1":
        raise KeyboardInterrupt
    print(message, file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(EXIT_INTERRUPTED)


def _stopped_at_once(work_dir: Path) -> str:
    """What a second Ctrl-C during training leaves: the last complete checkpoint, if any."""
    from typedrunner.engine.checkpoints import find_latest

    latest = find_latest(work_dir)
    kept = f"the last checkpoint is {latest}; resume=true continues from it" if latest else "no checkpoint was saved"
    return f"stopped at once by a second interrupt: the iterations since the last checkpoint are lost ({kept})"


def _check_report(runner: Any, findings: list[Any]) -> str:
    lines = [f"check: {runner.cfg.experiment_name}: configuration validated, contract probed (nothing trained)"]
    for stage, structure in runner.batch_structure.items():
        lines.append(f"  {stage} batch: {structure}")
    for stage, names in runner.metric_names.items():
        lines.append(f"  {stage} metrics: {', '.join(names)}")
    lines += [f"  warning [{p.stage}] {p.render()}" for p in findings] or ["  no problems found"]
    return "\n".join(lines)


def _report(error: Exception, output_dir: Path, text: str | None = None, *, failed: bool = False) -> None:
    """Print ``text`` (default: the error's message) on stderr, the traceback too with
    ``HYDRA_FULL_ERROR=1``, and write it to ``error_report.txt`` in the run directory. Under several
    ranks, rank 0 reports; a training failure (``failed``) is printed by its own rank too."""
    text = str(error) if text is None else text
    if failed:
        text = ranks.failure_report(text, error)  # several ranks: rank 0's report names them all
    elif not ranks.reports():
        return  # the same outcome on every rank: rank 0 reports it
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        traceback.print_exc()
    print(text, file=sys.stderr)
    if not ranks.reports():
        return
    with contextlib.suppress(OSError):
        (output_dir / "error_report.txt").write_text(text + "\n", encoding="utf-8")


def _composition_failures(run_and_report: Any) -> Any:
    """Hydra's ``run_and_report`` (it prints any error and exits 1), but a failure to compose the
    config (a missing group option, a value of the wrong shape, an interpolation that does not
    resolve, a YAML error, a nesting too deep) is reported as an invalid configuration, exit 2.
    Failures of the task itself (training, a failed sweep job) go to Hydra's own handler."""

    def run(func: Any) -> Any:
        def composing() -> Any:
            try:
                return func()
            except Exception as e:
                if _raised_by_task(e):
                    raise
                from typedrunner.app.compose import composition_problems

                if isinstance(e, ConfigError):  # refused as Hydra composed it (app/hydra_trust.py)
                    error = e
                else:
                    problems = composition_problems(e, sys.argv[1:])
                    if problems is None:
                        raise
                    error = ConfigError(problems)
                if os.environ.get("HYDRA_FULL_ERROR") == "1":
                    traceback.print_exc()
                print(str(error), file=sys.stderr)
                sys.stderr.flush()
                sys.exit(EXIT_INVALID)

        return run_and_report(composing)

    return run


def _raised_by_task(error: BaseException) -> bool:
    """Whether ``error`` came out of :func:`_task` (here, or from a sweep job in another process)."""
    for tb in _frames(error):
        code = tb.tb_frame.f_code
        if code is _task.__code__ or (code.co_name == "return_value" and "hydra" in code.co_filename):
            return True
    return False


def main() -> None:
    conf = _conf_dir()
    if not (conf / "config.yaml").is_file():
        print(
            f"typedrunner: no Hydra config at {conf / 'config.yaml'}; run from your project root "
            "(the directory holding conf/) or set TYPEDRUNNER_CONF to your conf directory",
            file=sys.stderr,
        )
        sys.exit(EXIT_INVALID)
    import hydra
    import hydra._internal.utils as hydra_utils  # run_and_report: where Hydra turns errors into exit 1

    from typedrunner.app.compose import load_python_configs
    from typedrunner.app.hydra_mode import reading_mode_without_composing
    from typedrunner.app.hydra_store import install
    from typedrunner.app.hydra_trust import checking_hydra_targets

    install()  # every schema field in Hydra's tree (app/tree.py)
    load_python_configs(conf)  # Python experiments register themselves in Hydra's ConfigStore
    ranks.pin_run_directory(sys.argv)  # under torchrun/srun: one run directory for all ranks
    app = hydra.main(version_base="1.3", config_path=str(conf), config_name="config")(_task)
    original = hydra_utils.run_and_report
    hydra_utils.run_and_report = _composition_failures(original)
    try:
        # checked before Hydra configures logging or builds a callback; hydra.mode read without composing
        with checking_hydra_targets(conf), reading_mode_without_composing():
            app()
    finally:
        hydra_utils.run_and_report = original
    _end_process()


def _end_process() -> None:
    """End a command line that has done its work, without the interpreter's teardown, after what a
    normal exit does that can matter to anyone: threading's exit callbacks run and threads that are
    not daemons joined (``threading._shutdown``, what the interpreter calls first), every ``atexit``
    handler run (logging's, multiprocessing's, a tracker's, a user's), every file still open for
    writing flushed. The teardown itself (freeing every module and object, C++ static destructors)
    takes about 1 s of CPU once torch is imported, as long for a hand-written script; under a launcher
    it has also aborted finished ranks ("terminate called without an active exception", exit -6),
    which torchrun reports as a failed run."""
    import atexit
    import gc
    import io
    import threading

    # What Python's exit does first, in its order: threading's exit callbacks (concurrent.futures tells
    # its workers to stop: joblib's sweep launcher waits on them), then every non-daemon thread joined
    threading._shutdown()  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue]
    atexit._run_exitfuncs()
    writers = (io.TextIOWrapper, io.BufferedWriter, io.BufferedRandom)
    for obj in gc.get_objects():
        if type(obj) in writers:
            with contextlib.suppress(Exception):  # detached, or a pipe whose reader is gone: nothing to lose
                if not obj.closed:
                    obj.flush()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0)


def _install_in_sweep_jobs() -> None:
    """A sweep job in another process (joblib, submitit) composes its config there: it imports this
    module to unpickle the task, and gets the generated tree and open parts here (app/hydra_store.py)."""
    from typedrunner.app.hydra_store import install

    install()
    ranks.rank_zero_writes_submitit_job_dir()  # a submitit job of several tasks: rank 0 writes .hydra/


_install_in_sweep_jobs()
