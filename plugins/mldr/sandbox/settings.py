"""The bounds of the sandbox's settings, in one place for the manager and the CLI's flags.

Imports nothing of the sandbox: the CLI builds its flags in an install without the sandbox extra.
"""

from __future__ import annotations

#: Route 53 takes 1 to 10 failed probes before a health check turns unhealthy.
FAILURE_THRESHOLD_RANGE = (1, 10)
#: A TCP port the edge may be asked to listen on.
PORT_RANGE = (1, 65535)
