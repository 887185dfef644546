"""``python -m gse_explain.figures``: see :mod:`gse_explain.figures.cli`."""

import sys

from .cli import main

sys.exit(main())
