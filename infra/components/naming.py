"""Short, stable names for resources whose AWS names are length-limited (ALB and target group: 32)."""

from __future__ import annotations

# The usual abbreviations (us-east-1 -> use1, ap-southeast-2 -> apse2); other words keep their initial.
_DIRECTIONS = {"northeast": "ne", "northwest": "nw", "southeast": "se", "southwest": "sw"}


def short_region(region: str) -> str:
    """`us-east-1` -> `use1`, `ap-southeast-2` -> `apse2`, `us-gov-west-1` -> `usgw1`."""
    country, *words, number = region.split("-")
    return country + "".join(_DIRECTIONS.get(w, w[0]) for w in words) + number
