# The seed tutorial as an OpenMMLab-style config: model, data, schedule and runtime from _base_.
_base_ = [
    "../_base_/models/mlp.py",
    "../_base_/datasets/rings.py",
    "../_base_/schedules/schedule_10e.py",
    "../_base_/default_runtime.py",
]

custom_imports = dict(imports=["examples.seed_mlp"], allow_failed_imports=False)
experiment_name = "mlp_rings_10e"
