"""Where the sandbox keeps its state, apart from the sandbox itself.

The break-glass CLI reads the running sandbox's connections from here (`mldr status` right after
`mldr sandbox up`) in an install without the sandbox extra, so this module imports nothing of it.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Environment variable naming the sandbox's state directory (default `.sandbox`).
SANDBOX_DIR_ENV = "MLDR_SANDBOX_DIR"


def sandbox_dir() -> Path:
    return Path(os.environ.get(SANDBOX_DIR_ENV, ".sandbox")).resolve()
