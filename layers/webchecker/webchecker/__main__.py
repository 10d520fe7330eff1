"""``python -m webchecker`` is the same as the ``webchecker`` command."""

import sys

from webchecker.cli import main

sys.exit(main())
