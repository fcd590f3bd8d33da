"""Typed schemas of every Runner argument. Pure pydantic: importing this does not import torch."""

from typedrunner.config.base import ConfigModel
from typedrunner.config.data import DataLoader, DefaultSampler
from typedrunner.config.env import AutoScaleLR, CompileCfg, DistCfg, EnvCfg, MpCfg, Randomness
from typedrunner.config.evaluator import Evaluator
from typedrunner.config.file import Config
from typedrunner.config.hooks import (
    CheckpointHook,
    DefaultHooks,
    DistSamplerSeedHook,
    IterTimerHook,
    LoggerHook,
    ParamSchedulerHook,
    RuntimeInfoHook,
)
from typedrunner.config.logging import LogProcessor
from typedrunner.config.optim import SGD, Adam, AdamW, ClipGrad, OptimWrapper, ParamMult, ParamwiseCfg
from typedrunner.config.runner import RunnerConfig
from typedrunner.config.scheduler import CosineAnnealingLR, ExponentialLR, LinearLR, MultiStepLR, StepLR
from typedrunner.config.train import (
    EpochBasedTrainLoop,
    IterBasedTrainLoop,
    TestLoop,
    TrainLoop,
    TrainLoopConfig,
    ValLoop,
)
from typedrunner.config.visualizer import (
    LocalVisBackend,
    MLflowVisBackend,
    TensorboardVisBackend,
    Visualizer,
    WandbVisBackend,
)
from typedrunner.errors import TypedRunnerWarning  # re-exported: its home is typedrunner.errors

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "AutoScaleLR",
    "CheckpointHook",
    "ClipGrad",
    "CompileCfg",
    "Config",
    "ConfigModel",
    "CosineAnnealingLR",
    "DataLoader",
    "DefaultHooks",
    "DefaultSampler",
    "DistCfg",
    "DistSamplerSeedHook",
    "EnvCfg",
    "EpochBasedTrainLoop",
    "Evaluator",
    "ExponentialLR",
    "IterBasedTrainLoop",
    "IterTimerHook",
    "LinearLR",
    "LocalVisBackend",
    "LogProcessor",
    "LoggerHook",
    "MLflowVisBackend",
    "MpCfg",
    "MultiStepLR",
    "OptimWrapper",
    "ParamMult",
    "ParamSchedulerHook",
    "ParamwiseCfg",
    "Randomness",
    "RunnerConfig",
    "RuntimeInfoHook",
    "StepLR",
    "TensorboardVisBackend",
    "TestLoop",
    "TrainLoop",
    "TrainLoopConfig",
    "TypedRunnerWarning",
    "ValLoop",
    "Visualizer",
    "WandbVisBackend",
]
