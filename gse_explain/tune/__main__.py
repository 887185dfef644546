"""``python -m gse_explain.tune``: see :mod:`gse_explain.tune.cli`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
