"""``python -m typedrunner.report``: see :mod:`typedrunner.app.report`."""

from typedrunner.app.report import main

if __name__ == "__main__":
    raise SystemExit(main())
