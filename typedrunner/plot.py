"""``python -m typedrunner.plot RUN_DIR... [-o curves.png]``: see :mod:`typedrunner.app.curves`."""

from typedrunner.app.curves import main

if __name__ == "__main__":
    raise SystemExit(main())
