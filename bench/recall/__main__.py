"""``python -m bench.recall --data PATH --out DIR [--facts turns|observation|both]``."""

from __future__ import annotations

import sys

from .run import main

sys.exit(main())
