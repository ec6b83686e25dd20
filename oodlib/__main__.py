"""``python -m oodlib``: see :mod:`oodlib.cli`."""

import sys

from .cli import main

sys.exit(main())
