"""Hooks: the base class with one typed method per event, the list that dispatches them, the
built-in hooks (``default_hooks``) and the custom hooks MMEngine users reach for."""
