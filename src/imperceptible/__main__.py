"""``python -m imperceptible``: the same as the ``imperceptible`` command."""

import sys

from .cli.main import main

sys.exit(main())
