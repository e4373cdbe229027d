"""Checks of numbers a person types (flags, DAG params, sandbox settings): one clear error each.

`float("nan")` and `float("inf")` parse as numbers, and every comparison with NaN is false, so a
bound written as `if value < 0: refuse` lets NaN through: a drill "passes" with `RTO 4.0 s <= nan s`
and an infinite timeout hangs. Every bound here refuses what is not finite first.
"""

from __future__ import annotations

import math

from mldr.errors import ConfigurationError


def finite_number(
    name: str,
    value: float,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
    error: type[ConfigurationError] = ConfigurationError,
) -> float:
    """`value` as a float when it is finite and within bounds; else `error` naming `name`."""
    number = float(value)
    if not math.isfinite(number):
        raise error(
            f"{name} must be a finite number, not {value!r}{_range(minimum, maximum, exclusive_minimum)}"
        )
    too_low = minimum is not None and (number <= minimum if exclusive_minimum else number < minimum)
    too_high = maximum is not None and number > maximum
    if too_low or too_high:
        raise error(f"{name} is out of range: {value!r}{_range(minimum, maximum, exclusive_minimum)}")
    return number


def whole_number(
    name: str,
    value: int,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    error: type[ConfigurationError] = ConfigurationError,
) -> int:
    """`value` when it is within bounds; else `error` naming `name`."""
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise error(f"{name} is out of range: {value!r}{_range(minimum, maximum, False)}")
    return value


def _range(minimum: float | None, maximum: float | None, exclusive_minimum: bool) -> str:
    low = None if minimum is None else f"{'>' if exclusive_minimum else '>='} {minimum:g}"
    high = None if maximum is None else f"<= {maximum:g}"
    bounds = " and ".join(b for b in (low, high) if b)
    return f" (expected {bounds})" if bounds else ""
