"""``python -m typedrunner.schema``: see :mod:`typedrunner.app.schema`."""

from typedrunner.app.schema import main

if __name__ == "__main__":
    main()
