"""Examples: the seed tutorial (MMEngine's Runner tutorial) in each style typedrunner accepts."""
