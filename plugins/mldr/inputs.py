"""Checks of numbers a person types (flags, DAG params, sandbox settings): one clear error each.

`float("nan")` and `float("inf")` parse as numbers, and every comparison with NaN is false, so a
bound written as `if value < 0: refuse` lets NaN through: a drill "passes" with `RTO 4.0 s <= nan s`
and an infinite timeout hangs. Every bound here refuses what is not finite first.
"""

from __future__ import annotations

import math

from mldr.errors import ConfigurationError


def number_problem(
    value: float,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
) -> str | None:
    """What is wrong with `value` ("must be a finite number, got nan"), or None when it is fine."""
    if not math.isfinite(value):
        return f"must be a finite number, got {value!r}"
    too_low = minimum is not None and (value <= minimum if exclusive_minimum else value < minimum)
    too_high = maximum is not None and value > maximum
    if too_low or too_high:
        return f"must be {_range(minimum, maximum, exclusive_minimum)}, got {value!r}"
    return None


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
    problem = number_problem(number, minimum=minimum, maximum=maximum, exclusive_minimum=exclusive_minimum)
    if problem:
        raise error(f"{name} {problem}")
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
    problem = number_problem(value, minimum=minimum, maximum=maximum)
    if problem:
        raise error(f"{name} {problem}")
    return value


def _range(minimum: float | None, maximum: float | None, exclusive_minimum: bool) -> str:
    low = None if minimum is None else f"{'>' if exclusive_minimum else '>='} {minimum:g}"
    high = None if maximum is None else f"<= {maximum:g}"
    return " and ".join(b for b in (low, high) if b)
