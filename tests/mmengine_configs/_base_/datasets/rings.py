# The seed tutorial's data: two noisy rings, 10,000 training and 1,000 validation points.
dataset_type = "MyDataset"

train_dataloader = dict(
    batch_size=64,
    num_workers=2,
    sampler=dict(type="DefaultSampler", shuffle=True),
    collate_fn=dict(type="default_collate"),
    dataset=dict(type=dataset_type, is_train=True, size=10000),
)
val_dataloader = dict(
    batch_size=1000,
    num_workers=2,
    sampler=dict(type="DefaultSampler", shuffle=False),
    collate_fn=dict(type="default_collate"),
    dataset=dict(type=dataset_type, is_train=False, size=1000),
)
val_evaluator = dict(type="Accuracy")
