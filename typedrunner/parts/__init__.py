"""The pieces a run is assembled from: the model base and the forward contract, metrics and the
evaluator, samplers, optimizer wrappers, schedules, hooks, checkpoint files and the run's logs.
Each is a typed class; ``build`` makes them from configs and ``engine`` drives them."""
