"""python -m hamsym: the same as the `hamsym` command."""

import sys

from .workbench.cli import main

sys.exit(main())
