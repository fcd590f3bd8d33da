"""Every command in README.md's shell blocks, and what runs it: the README is a contract.

``tests/test_readme.py`` extracts the commands of every fenced ``bash``/``sh``/``shell``/``console``
block (and the ``$ ...`` lines of ``text`` blocks, which show printed output), split at ``&&`` and
spelled as ``shlex.join`` spells them, and fails when one of them is not a key here, or when a key
here is no longer in the README. Adding a command to the README: add it here with the test that
runs it (``RunBy``), or, for a set-up line, why the CI covers it (``SetUp``); the failure message
lists the missing ones ready to paste.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RunBy:
    """``test`` (``tests/<file>.py::<test function>``) runs the command; ``note``: how its
    arguments differ from the README's (small data, a temporary run directory)."""

    test: str
    note: str = ""


@dataclass(frozen=True)
class SetUp:
    """A set-up or CI line, not run by a test: ``reason`` says what covers it."""

    reason: str


_CI = "the README's test command: .ci/run runs it on a fresh clone (test_ci_runs_the_readme_test_command)"
_README = "tests/test_readme.py::"
_SMALL = "with the seed's datasets shrunk to one batch and a temporary run directory"

README_COMMANDS: dict[str, RunBy | SetUp] = {
    # Two commands: set up, run the main job, run the test suite
    "pip install torch==2.13.0": SetUp(_CI),
    "pip install -e .": SetUp(".ci/run installs the package the same way, with the dev extra"),
    "OMP_NUM_THREADS=1 python -m typedrunner +experiment=mlp": RunBy(_README + "test_the_main_job", _SMALL),
    "pip install -e '.[dev]'": SetUp(_CI),
    "ruff check .": SetUp(_CI),
    "ruff format --check .": SetUp(_CI),
    "mypy typedrunner hydra_plugins examples tests benchmarks": SetUp(_CI),
    "pyright": SetUp(_CI),
    "lint-imports": SetUp(_CI),
    "OMP_NUM_THREADS=1 python -m pytest": SetUp(_CI),
    "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu": SetUp(
        "PyTorch's CPU wheel index, for CPU-only users on the public index; not reachable from the test "
        "machines, where `pip install torch==2.13.0` (the tested line) is a CPU build"
    ),
    # Sharded training (FSDP2); the DDP commands are listed with the section's others below
    "torchrun --standalone --nproc-per-node=2 -m typedrunner +experiment=mlp launcher=pytorch model_wrapper_cfg.type=FSDP2 'model_wrapper_cfg.shard_classes=[Linear]'": RunBy(
        "tests/test_fsdp.py::test_fsdp2_over_two_ranks_trains_as_one_process_with_twice_the_batch",
        "on 256 points for 2 epochs, 65 validation points, accumulative_counts=2, in a temporary run directory",
    ),
    # A short tour
    "python -m typedrunner +experiment=mlp debug=fast optim_wrapper.optimizer.lr=0.01": RunBy(
        "tests/test_front_door.py::test_debug_fast_trains_two_batches_one_epoch_no_checkpoints", "as written"
    ),
    "python -m typedrunner +experiment=mlp train_cfg.max_epochs=3 'param_scheduler.milestones=[1,2]' randomness.seed=0": RunBy(
        _README + "test_the_tour_override", _SMALL
    ),
    "python -m typedrunner +experiment=mlp print_config=true": RunBy(
        "tests/test_front_door.py::test_print_config_prints_the_validated_config_and_trains_nothing"
    ),
    "python -m typedrunner --help": RunBy(
        "tests/test_front_door.py::test_help_lists_every_field_with_type_default_and_docstring"
    ),
    "python -m typedrunner help=optim_wrapper": RunBy("tests/test_front_door.py::test_help_of_one_section"),
    "python -m typedrunner +experiment=mlp randomness.sed=0": RunBy(
        "tests/test_front_door.py::test_unknown_keys_and_bad_syntax_exit_2_with_the_path", "its output is checked there"
    ),
    "python -m typedrunner.plot outputs/mlp/2026-12-03_18-41-03 outputs/mlp/2026-12-03_18-52-10 -o compare.png": RunBy(
        "tests/test_curves.py::test_plot_command_overlays_runs", "the plot command's main() on two runs the test trains"
    ),
    "python -m typedrunner +experiment=mlp visualizer=tensorboard": RunBy(
        "tests/test_visualizer.py::test_tensorboard_event_files_hold_every_logged_scalar",
        "as a two-job sweep with every backend, small data",
    ),
    "python -m typedrunner +experiment=mlp visualizer=tensorboard "
    "'visualizer.vis_backends=[{type: TensorboardVisBackend}, {type: MLflowVisBackend}]'": RunBy(
        "tests/test_visualizer.py::test_mlflow_runs_of_a_sweep_share_one_experiment",
        "as a two-job sweep with every backend, small data",
    ),
    "python -m typedrunner +experiment=mlp optim_wrapper=sgd param_scheduler=cosine": RunBy(
        _README + "test_the_tour_group_options", _SMALL
    ),
    "python -m typedrunner +experiment=mlp --cfg job": RunBy(
        "tests/test_cli.py::test_cfg_job_prints_the_composition_and_trains_nothing",
        "with train_cfg.max_epochs=1, no scheduler, no workers",
    ),
    "python -m typedrunner +experiment=mlp check=true": RunBy(
        "tests/test_cli.py::test_check_validates_without_training", "with no scheduler and no workers"
    ),
    "python -m typedrunner +experiment=mlp train_cfg.max_epochs=0 train_cfg.max_epoch=3 model.activation=gelu "
    "model.layerz=3 param_scheduler.type=MultiStepLRR": RunBy(
        _README + "test_the_printed_output_is_what_the_program_prints", "exactly, and its output compared"
    ),
    "python -m typedrunner -m +experiment=mlp optim_wrapper.optimizer.lr=1e-3,1e-2 model.layers=2,4": RunBy(
        _README + "test_the_sweep_runs_every_point", _SMALL
    ),
    # Validation
    "python -m typedrunner +experiment=mlp train_dataloader.dataset.type=brokenmod.Float64Rings "
    "'param_scheduler.milestones=[4,12]' default_hooks.checkpoint.interval=20 "
    "+default_hooks.checkpoint.save_best=acc": RunBy(
        _README + "test_the_printed_output_is_what_the_program_prints",
        "exactly, with a brokenmod module holding Float64Rings, and its output compared",
    ),
    # Sweeps: parallel jobs, SLURM, Optuna, reports
    "pip install -e '.[sweeps]'": SetUp(".ci/run installs the sweeps extra through the dev extra"),
    "python -m typedrunner -m +experiment=mlp hydra/launcher=parallel optim_wrapper.optimizer.lr=1e-4,1e-3,1e-2 "
    "model.layers=2,4": RunBy(
        "tests/test_sweeps.py::test_joblib_runs_four_jobs_on_two_workers", "a 2x2 grid of one epoch each"
    ),
    "python -m typedrunner.report multirun/mlp/2026-11-27_12-53-01": RunBy(
        _README + "test_the_report_commands", "on the README sweep's directory"
    ),
    "python -m typedrunner.report outputs/mlp/2026-11-27_10-00-00 outputs/mlp/2026-11-27_11-00-00 --out reports/lr": (
        RunBy(_README + "test_the_report_commands", "on two of the README sweep's runs")
    ),
    "python -m typedrunner.report multirun/mlp/2026-11-27_12-53-01 --objective accuracy --direction maximize "
    "--no-plots": RunBy(_README + "test_the_report_commands", "on the README sweep's directory"),
    "python -m typedrunner -m +experiment=mlp hydra/launcher=slurm hydra.launcher.partition=gpu "
    "hydra.launcher.account=my_lab resume=auto optim_wrapper.optimizer.lr=1e-4,1e-3,1e-2": RunBy(
        "tests/test_sweeps.py::test_slurm_preset_composes_and_its_job_pickles_and_runs",
        "no cluster: the preset composes, submitit renders the sbatch lines, the pickled job runs as a node would",
    ),
    # Training on several GPUs and nodes
    "torchrun --standalone --nproc-per-node=2 -m typedrunner +experiment=mlp launcher=pytorch": RunBy(
        "tests/test_distributed.py::test_one_run_directory_holds_rank_zeros_files_once",
        "two CPU ranks with gloo, 2 epochs on 256 points",
    ),
    "srun --ntasks-per-node=2 python -m typedrunner +experiment=mlp launcher=slurm": RunBy(
        "tests/test_distributed.py::test_sigterm_to_every_rank_saves_once_exits_3_and_resumes_exactly",
        "no srun here: two processes given the environment srun sets, stopped by SIGTERM and resumed",
    ),
    "torchrun --standalone --nproc-per-node=2 -m typedrunner -m +experiment=mlp launcher=pytorch "
    "optim_wrapper.optimizer.lr=1e-3,1e-2": RunBy(
        "tests/test_distributed.py::test_a_sweep_under_torchrun_runs_each_job_on_every_rank",
        "two CPU ranks with gloo, one epoch on 256 points",
    ),
    "python -m typedrunner -m +experiment=mlp hydra/launcher=slurm_ddp launcher=slurm hydra.launcher.partition=gpu "
    "optim_wrapper.optimizer.lr=1e-3,1e-2": RunBy(
        "tests/test_submitit_ddp.py::test_the_slurm_ddp_preset_composes_is_allowed_and_renders_its_tasks_and_gpus",
        "no cluster: composed, validated, allowed, and rendered by submitit into its #SBATCH lines",
    ),
    "python -m typedrunner -m +experiment=mlp launcher=slurm hydra/launcher=submitit_local "
    "hydra.launcher.tasks_per_node=2 optim_wrapper.optimizer.lr=1e-3,1e-2": RunBy(
        "tests/test_submitit_ddp.py::test_each_job_is_one_ddp_run_of_two_ranks_in_its_own_directory",
        "one epoch on 256 points, CPU gloo, a temporary sweep directory",
    ),
    "python -m typedrunner -m +experiment=mlp hydra/sweeper=optuna_mlp": RunBy(
        "tests/test_sweeps.py::test_optuna_three_trials_best_value_is_a_logged_metric", "3 trials of one epoch"
    ),
    "python -m typedrunner -m +experiment=mlp hydra/sweeper=optuna_mlp hydra.sweeper.n_trials=50 "
    "'optim_wrapper.optimizer.lr=tag(log, interval(1e-5, 1e-2))'": RunBy(
        _README + "test_an_optuna_search_space_of_your_own", "2 trials instead of 50, " + _SMALL
    ),
}
