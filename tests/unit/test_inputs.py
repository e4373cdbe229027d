"""Numbers a person types: NaN and infinity are refused by name before any bound is compared."""

from __future__ import annotations

import pytest

from mldr.errors import ConfigurationError
from mldr.inputs import finite_number, whole_number


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_not_finite_is_refused_even_without_bounds(value: float) -> None:
    with pytest.raises(ConfigurationError, match="--threshold must be a finite number, got"):
        finite_number("--threshold", value)


def test_bounds_name_the_flag_and_the_range() -> None:
    assert finite_number("--timeout", 2.5, minimum=0, exclusive_minimum=True) == 2.5
    with pytest.raises(ConfigurationError, match=r"--timeout must be > 0, got 0.0"):
        finite_number("--timeout", 0, minimum=0, exclusive_minimum=True)
    with pytest.raises(ConfigurationError, match=r"--limit must be >= 1, got -3"):
        whole_number("--limit", -3, minimum=1)
    assert whole_number("--limit", 3, minimum=1, maximum=1000) == 3
