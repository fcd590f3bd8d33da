"""Style 2, a typed Python config: every class and keyword is checked by mypy and completed by an IDE.

Run from the project root:  python -m examples.train_python_config
"""

from __future__ import annotations

from examples.seed_mlp import Accuracy, MyAwesomeModel, MyDataset
from typedrunner import Runner, RunnerConfig, lazy
from typedrunner.config import (
    Adam,
    CheckpointHook,
    DataLoader,
    DefaultHooks,
    DefaultSampler,
    DistCfg,
    EnvCfg,
    Evaluator,
    LoggerHook,
    MpCfg,
    MultiStepLR,
    OptimWrapper,
    TrainLoop,
    ValLoop,
)


def seed_config(work_dir: str = "work_dirs/python_style", max_epochs: int = 10) -> RunnerConfig:
    """The seed tutorial as a typed config (equal to what `+experiment=mlp` validates to)."""
    return RunnerConfig(
        experiment_name="mlp",
        work_dir=work_dir,
        custom_imports=["examples.seed_mlp"],
        model=lazy(MyAwesomeModel, layers=2, activation="relu"),
        train_dataloader=DataLoader(
            dataset=lazy(MyDataset, is_train=True, size=10000),
            sampler=DefaultSampler(shuffle=True),
            batch_size=64,
            pin_memory=True,
            num_workers=2,
        ),
        val_dataloader=DataLoader(
            dataset=lazy(MyDataset, is_train=False, size=1000),
            sampler=DefaultSampler(shuffle=False),
            batch_size=1000,
            pin_memory=True,
            num_workers=2,
        ),
        train_cfg=TrainLoop(by_epoch=True, max_epochs=max_epochs, val_begin=2, val_interval=1),
        val_cfg=ValLoop(),
        val_evaluator=Evaluator(metrics=[lazy(Accuracy)]),
        optim_wrapper=OptimWrapper(optimizer=Adam(lr=1e-3)),
        param_scheduler=[MultiStepLR(by_epoch=True, milestones=[4, 8], gamma=0.1)],
        default_hooks=DefaultHooks(checkpoint=CheckpointHook(interval=1), logger=LoggerHook(interval=10)),
        env_cfg=EnvCfg(cudnn_benchmark=False, dist_cfg=DistCfg(backend="nccl"), mp_cfg=MpCfg(mp_start_method="fork")),
    )


if __name__ == "__main__":
    runner = Runner(seed_config())
    runner.train()
    print(runner.last_metrics)
