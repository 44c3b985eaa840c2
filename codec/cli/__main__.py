"""``python -m codec.cli ...`` is the ``lic`` command, as ``python -m codec ...`` is."""

import sys

from . import main

sys.exit(main())
