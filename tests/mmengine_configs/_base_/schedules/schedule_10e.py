# Adam, 10 epochs, the lr divided by 10 at epochs 4 and 8.
optim_wrapper = dict(optimizer=dict(type="Adam", lr=0.001))
param_scheduler = dict(type="MultiStepLR", by_epoch=True, milestones=[4, 8], gamma=0.1)
train_cfg = dict(by_epoch=True, max_epochs=10, val_begin=2, val_interval=1)
val_cfg = dict()
