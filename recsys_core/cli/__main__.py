"""``python -m recsys_core.cli``: the same command line as ``python -m recsys_core``."""

from __future__ import annotations

import sys

from recsys_core.cli import main

if __name__ == "__main__":
    sys.exit(main())
