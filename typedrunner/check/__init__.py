"""Checks before training: cross-field rules on the config, the work directory, and the contract
probe (one real batch per dataloader). Findings are data: a list of ``Problem``s, rendered once."""
