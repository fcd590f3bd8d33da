# A third level: the 10-epoch config, shortened for a quick run, with each inheritance feature.
_base_ = "./mlp_rings_10e.py"

# merged into the base's dicts key by key
model = dict(layers=3)
train_cfg = dict(max_epochs=2, val_begin=1)
train_dataloader = dict(num_workers=0, dataset=dict(size=2000))
val_dataloader = dict(num_workers=0)

# _delete_: replaces the base's dict instead of merging into it
optim_wrapper = dict(_delete_=True, optimizer=dict(type="SGD", lr=0.05, momentum=0.9))
param_scheduler = [
    dict(type="LinearLR", start_factor=0.5, by_epoch=False, end=10),
    dict(type="CosineAnnealingLR", by_epoch=True, begin=0, end={{_base_.train_cfg.max_epochs}} - 8),
]

# {{_base_.x}}: a value of the bases
test_dataloader = {{_base_.val_dataloader}}
test_evaluator = {{_base_.val_evaluator}}
test_cfg = dict()
experiment_name = "mlp_rings_quick"
