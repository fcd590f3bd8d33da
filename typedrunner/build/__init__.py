"""The one place where validated configs become objects."""
