"""``python -m occupy_relion``: the same as the ``occupy_relion`` console script."""

import sys

from .cli import main

sys.exit(main())
