"""Pulumi entrypoint (`pulumi up` from infra/): validate config, declare, export.

Pulumi runs this file with infra/ as the working directory; the repository root goes on
sys.path so the program's modules import as the `infra` package, exactly as the tests do.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from infra.program import main

main()
