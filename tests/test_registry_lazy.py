"""Registries (register, resolve, did-you-mean), ``lazy`` / ``Lazy`` and the ``Component`` annotation."""

from __future__ import annotations

import json
from typing import Any, Literal

import pytest
import torch
from pydantic import ValidationError
from torch import Tensor, nn

import typedrunner.hooks
from typedrunner.config import Adam, DataLoader, MultiStepLR, OptimWrapper, RunnerConfig
from typedrunner.errors import ConfigError, did_you_mean
from typedrunner.evaluator import BaseMetric
from typedrunner.model import BaseModel
from typedrunner.registry import (
    DATASETS,
    FUNCTIONS,
    HOOKS,
    METRICS,
    MODELS,
    OPTIMIZERS,
    PARAM_SCHEDULERS,
    Registry,
    import_object,
)
from typedrunner.registry.lazy import Lazy, lazy

# --------------------------------------------------------------------------------------------
# Module-level parts (importable by dotted path: tests.test_registry_lazy.<Name>)
# --------------------------------------------------------------------------------------------


class RegLazyNet(BaseModel):
    """A tiny model registered under a name unique to this test module."""

    def __init__(self, width: int = 4, activation: Literal["relu", "tanh"] = "relu", bias: bool = True) -> None:
        super().__init__()
        self.fc = nn.Linear(2, width, bias=bias)
        self.head = nn.Linear(width, 2)
        self.act: nn.Module = nn.ReLU() if activation == "relu" else nn.Tanh()

    def forward(self, data: Tensor, labels: Tensor, mode: str = "tensor") -> Any:
        logits = self.head(self.act(self.fc(data)))
        if mode == "loss":
            return {"loss": nn.functional.cross_entropy(logits, labels)}
        if mode == "predict":
            return logits, labels
        return logits


class UnregisteredNet(nn.Module):
    """Not in any registry: named by class or dotted path only."""

    def __init__(self, width: int = 3) -> None:
        super().__init__()
        self.fc = nn.Linear(width, 1)


class RegLazyPoints(torch.utils.data.Dataset[tuple[Tensor, Tensor]]):
    def __init__(self, size: int, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.data = torch.randn(size, 2, generator=generator)
        self.labels = (self.data[:, 0] > 0).long()

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.data[index], self.labels[index]

    def __len__(self) -> int:
        return len(self.data)


class RegLazyMetric(BaseMetric):
    def process(self, data_batch: Any, data_samples: Any) -> None:
        self.results.append(1)

    def compute_metrics(self, results: list[Any]) -> dict[str, float]:
        return {"count": float(len(results))}


MODELS.register_module(module=RegLazyNet)
DATASETS.register_module(module=RegLazyPoints)
METRICS.register_module(name="RegLazyCount", module=RegLazyMetric)


def make_thing(size: int, scale: float = 1.0) -> list[float]:
    return [scale] * size


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------
def test_register_module_as_a_decorator_returns_the_class() -> None:
    registry = Registry("widget")

    @registry.register_module()
    class Gear:
        pass

    assert registry.get("Gear") is Gear
    assert "Gear" in registry
    assert "Gearbox" not in registry
    assert registry.resolve("Gear") is Gear


def test_register_module_with_a_name_and_directly() -> None:
    registry = Registry("widget")

    class Gear:
        pass

    returned = registry.register_module(name="gear_v2", module=Gear)
    assert returned is Gear
    assert registry.get("gear_v2") is Gear
    assert registry.get("Gear") is None
    registry.register_module(module=make_thing)
    assert registry.resolve("make_thing") is make_thing
    assert registry.names() == ["gear_v2", "make_thing"]


def test_duplicate_name_is_an_error_and_force_replaces() -> None:
    registry = Registry("widget")

    @registry.register_module()
    class Gear:
        pass

    class OtherGear:
        pass

    with pytest.raises(KeyError, match="already registered") as info:
        registry.register_module(name="Gear", module=OtherGear)
    assert "force=True" in str(info.value)
    assert registry.get("Gear") is Gear  # unchanged after the refused registration
    registry.register_module(name="Gear", module=OtherGear, force=True)
    assert registry.get("Gear") is OtherGear


def test_registering_the_same_object_twice_is_harmless() -> None:
    registry = Registry("widget")

    class Gear:
        pass

    registry.register_module(module=Gear)
    registry.register_module(module=Gear)
    assert registry.get("Gear") is Gear


def test_registering_a_nameless_object_needs_a_name() -> None:
    registry = Registry("widget")
    nameless = lambda_free_callable()
    with pytest.raises(TypeError, match="give it a name"):
        registry.register_module(module=nameless)
    registry.register_module(name="named", module=nameless)
    assert registry.get("named") is nameless


class _CallableWithoutName:
    def __call__(self) -> int:
        return 1


def lambda_free_callable() -> _CallableWithoutName:
    """An instance: callable, but without ``__name__``."""
    return _CallableWithoutName()


def test_resolve_by_name_dotted_path_and_class() -> None:
    assert MODELS.resolve("RegLazyNet") is RegLazyNet
    assert MODELS.resolve("tests.test_registry_lazy.UnregisteredNet") is UnregisteredNet
    assert MODELS.resolve("tests.test_registry_lazy:UnregisteredNet") is UnregisteredNet
    assert MODELS.resolve(UnregisteredNet) is UnregisteredNet
    assert FUNCTIONS.resolve(make_thing) is make_thing


def test_resolve_builtins_and_torch_fallbacks() -> None:
    assert OPTIMIZERS.resolve("Adam") is torch.optim.Adam
    assert OPTIMIZERS.resolve("RMSprop") is torch.optim.RMSprop
    assert PARAM_SCHEDULERS.resolve("StepLR") is torch.optim.lr_scheduler.StepLR
    assert HOOKS.resolve("CheckpointHook") is typedrunner.hooks.CheckpointHook
    assert FUNCTIONS.resolve("default_collate") is torch.utils.data.default_collate
    # The fallback module only offers subclasses of the base, never the base or unrelated names.
    assert OPTIMIZERS.get("Optimizer") is None
    assert OPTIMIZERS.get("lr_scheduler") is None
    assert PARAM_SCHEDULERS.get("Adam") is None
    assert "RMSprop" in OPTIMIZERS.names()
    assert "Optimizer" not in OPTIMIZERS.names()


def test_unknown_name_suggests_the_closest() -> None:
    with pytest.raises(LookupError, match=r"did you mean RegLazyNet\?"):
        MODELS.resolve("RegLazyNt")
    with pytest.raises(LookupError, match=r"did you mean Adam\?"):
        OPTIMIZERS.resolve("Adamm")
    with pytest.raises(LookupError, match=r"did you mean CheckpointHook\?"):
        HOOKS.resolve("CheckpointHok")


def test_unknown_name_without_a_close_match_says_how_to_register() -> None:
    registry = Registry("widget")
    registry.register_module(name="gear", module=make_thing)
    with pytest.raises(LookupError) as info:
        registry.resolve("Zebra")
    message = str(info.value)
    assert "unknown widget type 'Zebra'" in message
    assert "register_module()" in message
    assert "gear" in message  # the known names are listed


def test_models_registry_message_names_the_importable_registry() -> None:
    with pytest.raises(LookupError, match=r"@MODELS\.register_module\(\)"):
        MODELS.resolve("QqqqqqqqqqqqqqqqWwww")


def test_bad_dotted_paths_are_lookup_errors_with_hints() -> None:
    with pytest.raises(LookupError, match=r"did you mean UnregisteredNet\?"):
        MODELS.resolve("tests.test_registry_lazy.UnregisteredNt")
    with pytest.raises(LookupError, match="cannot import module"):
        MODELS.resolve("no_such_package_xyz.models.Net")
    with pytest.raises(LookupError, match="not a dotted import path"):
        import_object("nodots")


def test_resolve_rejects_a_non_callable_type() -> None:
    with pytest.raises(LookupError, match="not int"):
        MODELS.resolve(3)


def test_name_of_gives_short_names_when_it_can() -> None:
    assert MODELS.name_of(RegLazyNet) == "RegLazyNet"
    assert METRICS.name_of(RegLazyMetric) == "RegLazyCount"
    assert OPTIMIZERS.name_of(torch.optim.Adam) == "Adam"
    assert PARAM_SCHEDULERS.name_of(torch.optim.lr_scheduler.MultiStepLR) == "MultiStepLR"
    assert HOOKS.name_of(typedrunner.hooks.LoggerHook) == "LoggerHook"
    assert MODELS.name_of(UnregisteredNet) == "tests.test_registry_lazy.UnregisteredNet"
    assert import_object(MODELS.name_of(UnregisteredNet)) is UnregisteredNet


def test_name_of_builtins_reexported_from_another_module() -> None:
    assert FUNCTIONS.name_of(torch.utils.data.default_collate) == "default_collate"
    from typedrunner.registry import DATA_SAMPLERS

    assert DATA_SAMPLERS.name_of(torch.utils.data.SequentialSampler) == "SequentialSampler"


def test_did_you_mean_handles_case_prefix_and_typos() -> None:
    names = ["max_epochs", "val_begin", "val_interval", "MultiStepLR", "StepLR"]
    assert did_you_mean("max_epoch", names) == "; did you mean max_epochs?"
    assert did_you_mean("multisteplr", names) == "; did you mean MultiStepLR?"
    assert did_you_mean("MultiSt", names) == "; did you mean MultiStepLR?"
    assert did_you_mean("qqqq", names) == ""


# --------------------------------------------------------------------------------------------
# lazy / Lazy
# --------------------------------------------------------------------------------------------
def test_lazy_equality_and_hash() -> None:
    a = lazy(RegLazyNet, width=8, activation="tanh")
    b = lazy(RegLazyNet, activation="tanh", width=8)
    assert a == b
    assert hash(a) == hash(b)
    assert a != lazy(RegLazyNet, width=9, activation="tanh")
    assert a != lazy(UnregisteredNet, width=8)
    assert lazy(RegLazyNet) != Lazy(RegLazyNet, {}, {"by_epoch": True})
    assert a != {"type": "RegLazyNet", "width": 8, "activation": "tanh"}


def test_lazy_repr_reads_like_the_call() -> None:
    assert repr(lazy(RegLazyNet, width=8, activation="tanh")) == "lazy(RegLazyNet, width=8, activation='tanh')"
    assert repr(lazy(RegLazyNet)) == "lazy(RegLazyNet)"
    assert repr(Lazy(make_thing, {"size": 2}, {"by_epoch": False})) == "lazy(make_thing, size=2, by_epoch=False)"
    assert lazy(RegLazyNet).name == "RegLazyNet"


def test_lazy_binds_positional_arguments_to_their_names() -> None:
    positional = lazy(RegLazyNet, 8, "tanh")
    assert positional.kwargs == {"width": 8, "activation": "tanh"}
    assert positional == lazy(RegLazyNet, width=8, activation="tanh")
    mixed = lazy(make_thing, 3, scale=0.5)
    assert mixed == lazy(make_thing, size=3, scale=0.5)
    with pytest.raises(TypeError):
        lazy(make_thing, 1, 2.0, 3)  # type: ignore[call-arg]


def test_lazy_build_calls_the_target_with_its_arguments_and_build_time_ones() -> None:
    assert lazy(make_thing, size=2, scale=0.5).build() == [0.5, 0.5]
    built = lazy(RegLazyNet, width=5, bias=False).build()
    assert isinstance(built, RegLazyNet)
    assert built.fc.out_features == 5
    assert built.fc.bias is None
    optimizer = Lazy(torch.optim.RMSprop, {"lr": 0.1}).build(list(built.parameters()))
    assert isinstance(optimizer, torch.optim.RMSprop)
    assert optimizer.defaults["lr"] == 0.1


# --------------------------------------------------------------------------------------------
# Component: the pydantic annotation
# --------------------------------------------------------------------------------------------
def test_mapping_and_lazy_validate_to_equal_configs() -> None:
    from_mapping = RunnerConfig.from_dict({"model": {"type": "RegLazyNet", "width": 8}})
    from_python = RunnerConfig(model=lazy(RegLazyNet, width=8))
    from_class = RunnerConfig.from_dict({"model": {"type": RegLazyNet, "width": 8}})
    from_path = RunnerConfig.from_dict({"model": {"type": "tests.test_registry_lazy.RegLazyNet", "width": 8}})
    assert from_mapping == from_python == from_class == from_path
    assert from_mapping.model == lazy(RegLazyNet, width=8)


def test_component_keeps_only_given_arguments_and_coerces_them() -> None:
    cfg = RunnerConfig.from_dict({"model": {"type": "RegLazyNet", "width": "8"}})
    assert cfg.model.kwargs == {"width": 8}
    assert type(cfg.model.kwargs["width"]) is int
    assert RunnerConfig.from_dict({"model": {"type": "RegLazyNet"}}).model == lazy(RegLazyNet)


def test_lazy_given_in_python_is_checked_at_runtime_too() -> None:
    with pytest.raises(ValidationError) as info:
        RunnerConfig(model=Lazy(RegLazyNet, {"widht": 8}))
    assert "did you mean width" in str(info.value)
    with pytest.raises(ValidationError):
        RunnerConfig(model=Lazy(RegLazyNet, {"activation": "gelu"}))
    with pytest.raises(ConfigError) as config_error:
        RunnerConfig.from_dict({"model": Lazy(RegLazyNet, {"activation": "gelu", "widht": 8})})
    paths = {p.path for p in config_error.value.problems}
    assert paths == {"model.activation", "model.widht"}


def test_lazy_of_a_function_with_a_missing_argument_is_rejected() -> None:
    with pytest.raises(ConfigError) as info:
        RunnerConfig.from_dict(
            {"model": {"type": "RegLazyNet"}, "train_dataloader": {"dataset": Lazy(RegLazyPoints, {"seed": 1})}}
        )
    (problem,) = info.value.problems
    assert problem.path == "train_dataloader.dataset.size"
    assert "required" in problem.message


def test_built_objects_are_accepted_where_a_component_is() -> None:
    net = RegLazyNet()
    cfg = RunnerConfig(model=net)
    assert cfg.model is net
    dataset = RegLazyPoints(size=4)
    loader = DataLoader(dataset=dataset)
    assert loader.dataset is dataset


def test_wrong_kind_of_value_for_a_component_is_rejected() -> None:
    with pytest.raises(ConfigError) as info:
        RunnerConfig.from_dict({"model": 5})
    (problem,) = info.value.problems
    assert problem.path == "model"
    assert "'type'" in problem.message
    # A built object of the wrong class is not a model.
    with pytest.raises(ConfigError) as wrong_class:
        RunnerConfig.from_dict({"model": RegLazyPoints(size=2)})
    assert wrong_class.value.problems[0].path == "model"


def net_factory(size: int, **options: Any) -> UnregisteredNet:
    """A constructor taking ``**options``: any extra key is one of its arguments."""
    return UnregisteredNet(size)


def test_var_keyword_constructor_checks_its_named_arguments() -> None:
    cfg = RunnerConfig.from_dict({"model": {"type": net_factory, "size": 3}})
    assert cfg.model == lazy(net_factory, size=3)
    with pytest.raises(ConfigError) as info:
        RunnerConfig.from_dict({"model": {"type": net_factory, "size": "three"}})
    assert info.value.problems[0].path == "model.size"


def test_var_keyword_constructor_accepts_extra_keys() -> None:
    cfg = RunnerConfig.from_dict({"model": {"type": net_factory, "size": 3, "anything": 1}})
    assert cfg.model.kwargs == {"size": 3, "anything": 1}
    assert isinstance(cfg.model.build(), UnregisteredNet)


# --------------------------------------------------------------------------------------------
# JSON serialisation of a RunnerConfig
# --------------------------------------------------------------------------------------------
def _full_config() -> RunnerConfig:
    return RunnerConfig.from_dict(
        {
            "model": {"type": "RegLazyNet", "width": 6, "activation": "tanh"},
            "data_preprocessor": {"type": UnregisteredNet, "width": 2},
            "train_dataloader": {"dataset": {"type": "RegLazyPoints", "size": 16}, "batch_size": 4},
            "train_cfg": {"max_epochs": 2},
            "optim_wrapper": {"optimizer": {"type": "RMSprop", "lr": 0.01}},
            "param_scheduler": [
                {"type": "MultiStepLR", "milestones": [1]},
                {"type": "CyclicLR", "base_lr": 0.001, "max_lr": 0.01, "by_epoch": False},
            ],
            "val_evaluator": {"type": "RegLazyCount", "prefix": "p"},
            "custom_hooks": [{"type": "CheckpointHook", "priority": "LOW", "interval": 2}],
        }
    )


def test_json_dump_gives_type_names() -> None:
    cfg = _full_config()
    data = cfg.model_dump(mode="json")
    json.dumps(data)  # plain JSON: no classes, no Lazy objects
    assert data["model"] == {"type": "RegLazyNet", "width": 6, "activation": "tanh"}
    assert data["data_preprocessor"] == {"type": "tests.test_registry_lazy.UnregisteredNet", "width": 2}
    assert data["train_dataloader"]["dataset"] == {"type": "RegLazyPoints", "size": 16}
    assert data["optim_wrapper"]["optimizer"] == {"type": "RMSprop", "lr": 0.01}
    assert data["param_scheduler"][0]["type"] == "MultiStepLR"
    assert data["param_scheduler"][0]["milestones"] == [1]
    assert data["param_scheduler"][1] == {
        "type": "CyclicLR",
        "base_lr": 0.001,
        "max_lr": 0.01,
        "by_epoch": False,
        "begin": 0,
        "end": None,
        "convert_to_iter_based": False,
    }
    assert data["val_evaluator"] == {"type": "Evaluator", "metrics": [{"type": "RegLazyCount", "prefix": "p"}]}
    assert data["custom_hooks"] == [{"type": "CheckpointHook", "interval": 2, "priority": "LOW"}]


def test_json_dump_validates_back_to_an_equal_config() -> None:
    cfg = _full_config()
    again = RunnerConfig.from_dict(json.loads(json.dumps(cfg.model_dump(mode="json"))))
    assert again == cfg


def test_typed_python_config_dumps_typed_names() -> None:
    cfg = RunnerConfig(
        model=lazy(RegLazyNet),
        optim_wrapper=OptimWrapper(optimizer=Adam(lr=0.1)),
        param_scheduler=[MultiStepLR(milestones=[2])],
    )
    data = cfg.model_dump(mode="json")
    assert data["model"] == {"type": "RegLazyNet"}
    assert data["optim_wrapper"]["optimizer"]["type"] == "Adam"
    assert data["optim_wrapper"]["optimizer"]["lr"] == 0.1
    assert data["optim_wrapper"]["optimizer"]["betas"] == [0.9, 0.999]
    assert data["param_scheduler"][0]["type"] == "MultiStepLR"


def test_json_dump_of_a_built_object_is_tagged() -> None:
    cfg = RunnerConfig(model=RegLazyNet())
    assert cfg.model_dump(mode="json")["model"] == "<built RegLazyNet>"
