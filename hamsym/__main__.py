"""python -m hamsym: the same as the `hamsym` command."""

import sys

from .cli import main

sys.exit(main())
