"""Style 3, manual: the tutorial's own code, with built objects, only the imports changed.

Run from the project root:  python -m examples.train_manual
"""

from __future__ import annotations

from torch.optim import Adam
from torch.utils.data import DataLoader, default_collate

from examples.seed_mlp import Accuracy, MyAwesomeModel, MyDataset
from typedrunner.runner import Runner


def build_runner(work_dir: str = "exp/my_awesome_model", max_epochs: int = 10) -> Runner:
    train_set = MyDataset(is_train=True, size=10000)
    valid_set = MyDataset(is_train=False, size=1000)
    return Runner(
        model=MyAwesomeModel(layers=2, activation="relu"),
        work_dir=work_dir,
        train_dataloader=DataLoader(
            dataset=train_set, shuffle=True, collate_fn=default_collate, batch_size=64, pin_memory=False, num_workers=2
        ),
        val_dataloader=DataLoader(
            dataset=valid_set,
            shuffle=False,
            collate_fn=default_collate,
            batch_size=1000,
            pin_memory=False,
            num_workers=2,
        ),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs, val_begin=2, val_interval=1),
        optim_wrapper=dict(optimizer=dict(type=Adam, lr=0.001)),
        param_scheduler=dict(type="MultiStepLR", by_epoch=True, milestones=[4, 8], gamma=0.1),
        val_cfg=dict(),
        val_evaluator=dict(type=Accuracy),
        default_hooks=dict(checkpoint=dict(type="CheckpointHook", interval=1)),
        launcher="none",
        env_cfg=dict(cudnn_benchmark=False, dist_cfg=dict(backend="nccl"), mp_cfg=dict(mp_start_method="fork")),
        log_level="INFO",
        load_from=None,
        resume=False,
    )


if __name__ == "__main__":
    runner = build_runner()
    runner.train()
    print(runner.last_metrics)
