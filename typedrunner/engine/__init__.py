"""The execution layer: the ``Runner``, its run state, the loops, resume and the guards that keep a
run's work safe. It receives validated objects and never imports Hydra or OmegaConf."""
