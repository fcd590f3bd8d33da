"""``python -m typedrunner.migrate``: see :mod:`typedrunner.app.migrate`."""

import sys

from typedrunner.app.migrate import main

if __name__ == "__main__":
    sys.exit(main())
