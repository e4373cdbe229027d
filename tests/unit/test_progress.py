"""The progress lines of long operations (verify, resync): n of N, rate, ETA, on a fake clock."""

from __future__ import annotations

import logging
import threading

import pytest

from mldr.progress import Progress, duration


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


LOGGER = "mldr.test.progress"


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def logger(caplog: pytest.LogCaptureFixture) -> logging.Logger:
    caplog.set_level(logging.INFO, logger=LOGGER)
    return logging.getLogger(LOGGER)


def test_n_of_n_with_rate_and_eta_at_most_every_interval(
    clock: Clock, logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    progress = Progress("resync training-data", total=10, every=2.0, logger=logger, clock=clock)
    clock.now += 1.0
    progress.tick()  # 1 s in: too soon for a line
    assert lines(caplog) == []
    clock.now += 1.5
    progress.tick()  # 2.5 s, 2 of 10: 0.8 objects/s, 8 left at 1.25 s each
    assert lines(caplog) == ["resync training-data: 2 of 10 objects (1 objects/s, ETA 10s)"]
    clock.now += 0.5
    progress.tick()
    assert len(lines(caplog)) == 1  # 0.5 s after the last line


def test_the_last_unit_always_says_how_long_it_took(
    clock: Clock, logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    progress = Progress("resync models", total=3, every=600.0, logger=logger, clock=clock)
    for _ in range(3):
        clock.now += 50.0
        progress.tick()
    assert lines(caplog) == ["resync models: 3 of 3 objects (0 objects/s, in 2m30s)"]


def test_total_unknown_until_the_listings_end(
    clock: Clock, logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    progress = Progress(
        "resync training-data", until_total="listings still being read", logger=logger, clock=clock
    )
    for _ in range(16):
        clock.now += 0.25
        progress.tick()
    assert lines(caplog) == [
        "resync training-data: 8 objects done, listings still being read (4 objects/s)",
        "resync training-data: 16 objects done, listings still being read (4 objects/s)",
    ]
    progress.planned(16)  # every copy ended before the listings did: said once, as finished
    assert lines(caplog)[-1] == "resync training-data: 16 of 16 objects (4 objects/s, in 4s)"
    caplog.clear()
    Progress("resync other", logger=logger, clock=clock).planned(0)
    assert lines(caplog) == []  # nothing to do: nothing to say


def test_rate_in_items_when_units_are_partitions(
    clock: Clock, logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    progress = Progress(
        "verify training-data",
        unit="partitions",
        items="keys",
        total=4,
        every=5.0,
        logger=logger,
        clock=clock,
    )
    clock.now += 5.0
    progress.tick(2_000)  # 1 of 4 partitions after 5 s: 15 s to go
    assert lines(caplog) == ["verify training-data: 1 of 4 partitions, 2000 keys (400 keys/s, ETA 15s)"]


def test_ticks_from_many_threads_are_all_counted(clock: Clock, logger: logging.Logger) -> None:
    progress = Progress("verify big", unit="partitions", items="keys", total=800, logger=logger, clock=clock)

    def work() -> None:
        for _ in range(100):
            progress.tick(3)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (progress.done, progress.items) == (800, 2400)


def test_durations_read_at_a_glance() -> None:
    assert [duration(s) for s in (0, 44.6, 89, 90, 725, 5399, 5400, 7380)] == [
        "0s",
        "45s",
        "89s",
        "1m30s",
        "12m05s",
        "89m59s",
        "1h30m",
        "2h03m",
    ]
