"""``python -m typedrunner.diff``: see :mod:`typedrunner.app.diff`."""

from typedrunner.app.diff import main

if __name__ == "__main__":
    raise SystemExit(main())
