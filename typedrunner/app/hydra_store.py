"""What typedrunner puts into Hydra before it composes: the generated base config (every schema
field with its default, ``app/tree.py``), the generated ``--help`` (``app/help.py``), and open parts
that take new keys from the command line without ``+``."""

from __future__ import annotations

import functools
from typing import Any

from typedrunner.app.help import HELP_NAME, help_node
from typedrunner.app.tree import BASE_NAME, base_tree, give_open_part, holds_generated_default, open_parts

__all__ = ["install"]


@functools.cache
def install() -> None:
    """Generate the base and store it in Hydra's ConfigStore; make Hydra apply the command line's
    overrides to open parts without ``+``. Idempotent; called by the command line and by
    ``compose``, and on import of the command line (sweep jobs in other processes import it)."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra.core.config_store import ConfigStore
    from hydra.core.override_parser.types import OverrideType

    store = ConfigStore.instance()
    store.store(name=BASE_NAME, node=base_tree(), provider="typedrunner")
    store.store(group="hydra/help", name=HELP_NAME, node=help_node(), provider="typedrunner")
    original = ConfigLoaderImpl._apply_overrides_to_config

    def apply(overrides: list[Any], cfg: Any) -> None:
        # Hydra applies the command line's overrides after composing the files and closing the
        # config (hydra/_internal/config_loader_impl.py); open parts must be open by then.
        open_parts(cfg)
        for override in overrides:
            key = str(override.key_or_group)
            if override.package is None and not override.is_delete() and "." in key and not key.startswith("hydra."):
                give_open_part(cfg, key)
            if override.is_add() and holds_generated_default(cfg, key):
                # `+default_hooks.checkpoint.save_last=false` added a key that was not in the tree
                # before the defaults were; it still sets it (Hydra would refuse: "already there").
                override.type = OverrideType.FORCE_ADD
        original(overrides, cfg)

    ConfigLoaderImpl._apply_overrides_to_config = staticmethod(apply)  # type: ignore[method-assign]
