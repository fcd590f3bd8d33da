"""Every YAML in conf/ is a test case: each group option, each experiment, each documented command.

YAML files are discovered with glob, so a new option or experiment is covered without editing this file.
``work_dir`` in conf/config.yaml is ``${hydra:runtime.output_dir}``, which only resolves inside a Hydra
run, so every composition here overrides ``work_dir``.
"""

from __future__ import annotations

import importlib.util
import itertools
import shlex
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import DictConfig, OmegaConf

from examples.train_python_config import seed_config
from tests.helpers import CONF
from typedrunner.app.compose import CLI_KEYS, compose, to_plain, to_runner_config
from typedrunner.config import (
    SGD,
    Adam,
    CheckpointHook,
    CosineAnnealingLR,
    DataLoader,
    DefaultSampler,
    EpochBasedTrainLoop,
    LoggerHook,
    MultiStepLR,
    RunnerConfig,
    TrainLoop,
)
from typedrunner.config.optim import OptimWrapper as OptimWrapperConfig
from typedrunner.errors import ConfigError
from typedrunner.registry.lazy import Lazy

GLOBAL_PACKAGE = "# @package _global_"


def _group_options() -> list[tuple[str, str]]:
    """``(group, option)`` for every YAML under a group folder, experiments excluded."""
    out = []
    for path in sorted(CONF.rglob("*.yaml")):
        group = path.relative_to(CONF).parent.as_posix()
        if group not in (".", "experiment") and not group.startswith("hydra"):
            out.append((group, path.stem))
    return out


GROUP_OPTIONS = _group_options()
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
ALL_YAML = sorted(p.relative_to(CONF).as_posix() for p in CONF.rglob("*.yaml"))
# conf/hydra/ holds Hydra's own groups (launchers, sweepers, callbacks): Hydra settings, not Runner arguments.
RUNNER_YAML = [relative for relative in ALL_YAML if not relative.startswith("hydra/")]
BASE_EXPERIMENT = "mlp"


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One run directory for the module (compositions only validate; nothing is written)."""
    return str(tmp_path_factory.mktemp("conf_work_dir"))


def compose_conf(overrides: Sequence[str], work_dir: str) -> DictConfig:
    cfg: DictConfig = compose([*overrides, f"work_dir='{work_dir}'"], config_dir=str(CONF))
    return cfg


def validate(overrides: Sequence[str], work_dir: str) -> RunnerConfig:
    config, options = to_runner_config(compose_conf(overrides, work_dir))
    assert options.check is False
    return config


def yaml_content(relative: str) -> tuple[dict[str, Any], bool]:
    """A YAML file's own values (``defaults`` removed) and whether it is in the global package."""
    path = CONF / relative
    loaded = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    assert isinstance(loaded, dict)
    data = {str(k): v for k, v in loaded.items() if k != "defaults"}
    return data, path.read_text(encoding="utf-8").lstrip().startswith(GLOBAL_PACKAGE)


def assert_contains(whole: Any, part: Any, where: str = "") -> None:
    """Every value of ``part`` is in ``whole`` at the same place."""
    if isinstance(part, Mapping):
        assert isinstance(whole, Mapping), f"{where}: {whole!r} is not a mapping"
        for key, value in part.items():
            assert key in whole, f"{where}.{key} missing from the composed config"
            assert_contains(whole[key], value, f"{where}.{key}" if where else str(key))
    else:
        assert whole == part, f"{where}: composed {whole!r}, file says {part!r}"


def test_conf_discovery_finds_the_shipped_files() -> None:
    assert "config.yaml" in ALL_YAML
    assert BASE_EXPERIMENT in EXPERIMENTS
    groups = {g for g, _ in GROUP_OPTIONS}
    assert {"model", "data", "optim_wrapper", "param_scheduler", "val_evaluator"} <= groups


# --------------------------------------------------------------------------------------------
# The schema tree: every YAML's keys are Runner arguments
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("relative", ALL_YAML)
def test_every_yaml_opens_with_a_comment_saying_how_to_run_it(relative: str) -> None:
    text = (CONF / relative).read_text(encoding="utf-8")
    comments = [line for line in text.splitlines() if line.startswith("#") and not line.startswith(GLOBAL_PACKAGE)]
    assert comments, f"{relative} has no opening comment"
    assert any("python -m typedrunner" in line for line in comments), f"{relative}: no command in its comments"


@pytest.mark.parametrize("relative", RUNNER_YAML)
def test_every_yaml_sets_only_runner_arguments(relative: str) -> None:
    data, is_global = yaml_content(relative)
    group = Path(relative).parent.as_posix()
    if group == "." or is_global:
        keys = set(data) - {"hydra"}
        assert keys <= set(RunnerConfig.model_fields) | set(CLI_KEYS), keys - set(RunnerConfig.model_fields)
    else:
        assert group.split("/")[0] in RunnerConfig.model_fields, f"group {group!r} is not a Runner argument"


def test_primary_config_composes_without_an_experiment(work_dir: str) -> None:
    cfg = compose_conf([], work_dir)
    plain = to_plain(cfg)
    assert plain["check"] is False
    assert plain["work_dir"] == work_dir
    assert "hydra" not in plain
    assert set(plain) <= set(RunnerConfig.model_fields) | set(CLI_KEYS)


# --------------------------------------------------------------------------------------------
# Group options and experiments
# --------------------------------------------------------------------------------------------
def _missing_extra(overrides: Sequence[str]) -> str | None:
    """The extra a ``visualizer=...`` choice needs, when its library is not installed here."""
    for override in overrides:
        extra = override.removeprefix("visualizer=") if override.startswith("visualizer=") else None
        if extra in ("tensorboard", "mlflow", "wandb") and importlib.util.find_spec(extra) is None:
            return extra
    return None


# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("group", "option"), GROUP_OPTIONS, ids=[f"{g}={o}" for g, o in GROUP_OPTIONS])
def test_group_option_composes_and_validates(group: str, option: str, work_dir: str) -> None:
    cfg = compose_conf([f"+experiment={BASE_EXPERIMENT}", f"{group}={option}"], work_dir)
    plain = to_plain(cfg)
    content, is_global = yaml_content(f"{group}/{option}.yaml")
    if is_global:
        assert_contains(plain, content)
    else:
        node: Any = plain
        for part in group.split("/"):
            node = node[part]
        assert_contains(node, content, group.replace("/", "."))
    needs = (
        {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}.get(option)
        if group == "visualizer"
        else None
    )
    if needs is not None and importlib.util.find_spec(needs) is None:  # an optional extra (the dev extra has it)
        with pytest.raises(ConfigError, match=rf"pip install 'typedrunner\[{needs}\]'"):
            to_runner_config(cfg)
        return
    config, _ = to_runner_config(cfg)
    assert config.work_dir == work_dir


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_composes_and_validates(experiment: str, work_dir: str) -> None:
    cfg = compose_conf([f"+experiment={experiment}"], work_dir)
    content, is_global = yaml_content(f"experiment/{experiment}.yaml")
    assert is_global, "experiment files start with '# @package _global_'"
    assert_contains(to_plain(cfg), content)
    config, options = to_runner_config(cfg)
    assert options.check is False
    assert config.model is not None


def test_optim_wrapper_sgd_option(work_dir: str) -> None:
    config = validate([f"+experiment={BASE_EXPERIMENT}", "optim_wrapper=sgd"], work_dir)
    assert isinstance(config.optim_wrapper, OptimWrapperConfig)
    assert config.optim_wrapper.optimizer == SGD(lr=0.01, momentum=0.9)


def test_param_scheduler_cosine_option(work_dir: str) -> None:
    config = validate([f"+experiment={BASE_EXPERIMENT}", "param_scheduler=cosine"], work_dir)
    assert config.param_scheduler == [CosineAnnealingLR(by_epoch=True, T_max=10, eta_min=0.0)]


# --------------------------------------------------------------------------------------------
# The seed experiment
# --------------------------------------------------------------------------------------------
def test_experiment_mlp_equals_the_python_seed_config(work_dir: str) -> None:
    from_yaml = validate(["+experiment=mlp"], work_dir)
    from_python = seed_config(work_dir=work_dir)
    assert from_yaml == from_python
    assert from_yaml.model_dump(mode="json") == from_python.model_dump(mode="json")


def test_experiment_mlp_holds_the_seed_numbers(work_dir: str) -> None:
    config = validate(["+experiment=mlp"], work_dir)
    assert config.experiment_name == "mlp"
    assert config.custom_imports == ["examples.seed_mlp"]
    assert config.train_cfg == TrainLoop(by_epoch=True, max_epochs=10, val_begin=2, val_interval=1)

    assert isinstance(config.optim_wrapper, OptimWrapperConfig)
    assert config.optim_wrapper.optimizer == Adam(lr=1e-3)
    assert config.param_scheduler == [MultiStepLR(by_epoch=True, milestones=[4, 8], gamma=0.1)]

    model = config.model
    assert isinstance(model, Lazy)
    assert model.name == "MyAwesomeModel"
    assert model.kwargs == {"layers": 2, "activation": "relu"}

    train, val = config.train_dataloader, config.val_dataloader
    assert isinstance(train, DataLoader)
    assert isinstance(val, DataLoader)
    assert (train.batch_size, val.batch_size) == (64, 1000)
    assert train.dataset.kwargs == {"is_train": True, "size": 10000}
    assert val.dataset.kwargs == {"is_train": False, "size": 1000}
    assert train.sampler == DefaultSampler(shuffle=True)
    assert val.sampler == DefaultSampler(shuffle=False)

    assert config.val_evaluator is not None
    assert [m.name for m in config.val_evaluator.metrics] == ["Accuracy"]
    assert config.default_hooks.checkpoint == CheckpointHook(interval=1)
    assert config.default_hooks.logger == LoggerHook(interval=10)
    assert config.launcher == "none"
    assert config.resume is False
    assert config.load_from is None
    assert config.env_cfg.dist_cfg.backend == "nccl"
    assert config.env_cfg.mp_cfg.mp_start_method == "fork"
    assert config.env_cfg.cudnn_benchmark is False


def test_check_flag_is_returned_not_validated_as_a_runner_argument(work_dir: str) -> None:
    config, options = to_runner_config(compose_conf(["+experiment=mlp", "check=true"], work_dir))
    assert options.check is True
    assert config == seed_config(work_dir=work_dir)
    with pytest.raises(ConfigError) as info:
        to_runner_config(compose_conf(["+experiment=mlp", "check=maybe"], work_dir))
    assert [p.path for p in info.value.problems] == ["check"]


@pytest.mark.parametrize(
    ("override", "path"),
    [
        ("train_cfg.max_epochs=0", "train_cfg.max_epochs"),
        ("optim_wrapper.optimizer.lr=-0.1", "optim_wrapper.optimizer.lr"),
        ("model.activation=gelu", "model.activation"),
        ("+train_cfg.max_epoch=3", "train_cfg.max_epoch"),
        ("optim_wrapper.optimizer.type=Adamm", "optim_wrapper.optimizer.type"),
        ("train_dataloader.batch_size=0", "train_dataloader.batch_size"),
        ("resume=maybe", "resume"),
    ],
)
def test_bad_command_line_override_is_a_config_error_at_its_path(override: str, path: str, work_dir: str) -> None:
    with pytest.raises(ConfigError) as info:
        to_runner_config(compose_conf(["+experiment=mlp", override], work_dir))
    assert path in [p.path for p in info.value.problems]


# --------------------------------------------------------------------------------------------
# A command-line override always wins (hypothesis)
# --------------------------------------------------------------------------------------------
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lr=st.floats(min_value=1e-6, max_value=10.0, allow_nan=False, allow_infinity=False),
    layers=st.integers(min_value=1, max_value=32),
)
def test_command_line_lr_and_layers_always_win(lr: float, layers: int, work_dir: str) -> None:
    config = validate(["+experiment=mlp", f"optim_wrapper.optimizer.lr={lr!r}", f"model.layers={layers}"], work_dir)
    assert config.optim_wrapper is not None
    assert config.optim_wrapper.optimizer.lr == lr  # type: ignore[union-attr]
    assert isinstance(config.model, Lazy)
    assert config.model.kwargs["layers"] == layers
    assert type(config.model.kwargs["layers"]) is int


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    max_epochs=st.integers(min_value=2, max_value=500),
    batch_size=st.integers(min_value=1, max_value=4096),
    activation=st.sampled_from(["relu", "silu", "none"]),
)
def test_command_line_overrides_win_over_experiment_and_global_groups(
    max_epochs: int, batch_size: int, activation: str, work_dir: str
) -> None:
    config = validate(
        [
            "+experiment=mlp",
            f"train_cfg.max_epochs={max_epochs}",
            f"train_dataloader.batch_size={batch_size}",
            f"model.activation={activation}",
        ],
        work_dir,
    )
    assert isinstance(config.train_cfg, EpochBasedTrainLoop)
    assert config.train_cfg.max_epochs == max_epochs
    assert isinstance(config.train_dataloader, DataLoader)
    assert config.train_dataloader.batch_size == batch_size
    assert config.model.kwargs["activation"] == activation


# --------------------------------------------------------------------------------------------
# The commands documented in the YAML comments (runs and sweeps) compose and validate
# --------------------------------------------------------------------------------------------
def _documented_commands() -> list[tuple[str, tuple[str, ...]]]:
    out: list[tuple[str, tuple[str, ...]]] = []
    for relative in ALL_YAML:
        for line in (CONF / relative).read_text(encoding="utf-8").splitlines():
            if not line.startswith("#") or "python -m typedrunner" not in line:
                continue
            words = shlex.split(line.split("python -m typedrunner", 1)[1])
            args = [w for w in words if w not in ("-m", "...") and not w.startswith("--")]
            args = [w for w in args if w != "job"]  # ``--cfg job``
            if not any(a.startswith("+experiment=") for a in args):
                args.insert(0, f"+experiment={BASE_EXPERIMENT}")  # '...' stands for the rest of a run
            if (relative, tuple(args)) not in out:
                out.append((relative, tuple(args)))
    return out


def _sweep_points(args: Sequence[str]) -> Iterator[list[str]]:
    """Every job of a Hydra multirun over ``args`` (comma lists expanded, as the basic sweeper does)."""
    parsed = OverridesParser.create().parse_overrides(list(args))
    choices: list[list[str]] = []
    for override in parsed:
        key = override.get_key_element()
        if override.is_sweep_override():
            choices.append([f"{key}={value}" for value in override.sweep_string_iterator()])
        else:
            choices.append([f"{key}={override.get_value_element_as_str()}"])
    for combination in itertools.product(*choices):
        yield list(combination)


DOCUMENTED = _documented_commands()


@pytest.mark.parametrize(("relative", "args"), DOCUMENTED, ids=[f"{r}:{' '.join(a)}" for r, a in DOCUMENTED])
def test_documented_command_composes_and_every_sweep_point_validates(
    relative: str, args: tuple[str, ...], work_dir: str
) -> None:
    points = list(_sweep_points(args))
    assert points
    for point in points:
        cfg = compose_conf(point, work_dir)
        needs = _missing_extra(point)
        if needs is not None:  # an optional extra (the dev extra has it): refused, naming it
            with pytest.raises(ConfigError, match=rf"pip install 'typedrunner\[{needs}\]'"):
                to_runner_config(cfg)
            continue
        config, _ = to_runner_config(cfg)
        for override in OverridesParser.create().parse_overrides(point):
            key = override.key_or_group
            if "." in key:  # a value override (not a group choice): the composed value is the given one
                assert OmegaConf.select(cfg, key) == override.value(), override.input_line
        assert config.work_dir == work_dir
