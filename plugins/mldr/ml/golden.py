"""The golden set: a fixed evaluation set for prediction parity between regions.

Twelve rows of the iris dataset, four per class (rows `GOLDEN_ROWS`), written out here so the
runbooks' verify steps and the drill can send them without importing scikit-learn (~4.5 s of
CPU per process on our machines). `tests/unit/test_ml_registry.py` checks them against iris.
"""

from __future__ import annotations

#: Rows of the iris dataset in the golden set, spread over the three classes.
GOLDEN_ROWS = (0, 12, 25, 37, 50, 62, 75, 87, 100, 112, 125, 137)

_GOLDEN: tuple[tuple[float, float, float, float], ...] = (
    (5.1, 3.5, 1.4, 0.2),
    (4.8, 3.0, 1.4, 0.1),
    (5.0, 3.0, 1.6, 0.2),
    (4.9, 3.6, 1.4, 0.1),
    (7.0, 3.2, 4.7, 1.4),
    (6.0, 2.2, 4.0, 1.0),
    (6.6, 3.0, 4.4, 1.4),
    (6.3, 2.3, 4.4, 1.3),
    (6.3, 3.3, 6.0, 2.5),
    (6.8, 3.0, 5.5, 2.1),
    (7.2, 3.2, 6.0, 1.8),
    (6.4, 3.1, 5.5, 1.8),
)


def golden_set() -> list[list[float]]:
    """The golden set as request instances (a fresh list: callers may not share it)."""
    return [list(row) for row in _GOLDEN]
