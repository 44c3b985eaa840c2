"""``python -m codec ...`` is the ``lic`` command."""

import sys

from .cli import main

sys.exit(main())
