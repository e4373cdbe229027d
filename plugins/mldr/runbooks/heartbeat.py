"""A run's heartbeat: how a reader tells a running operation from one whose run died.

An operation's record says `running` from its first step to its end; a run killed mid-step (a
CLI killed, an Airflow run failed for good or marked failed) never writes its end, so the record
alone would read `running` forever. While a run executes an operation it writes a heartbeat
every few seconds; `progress_view.stalled` reads a running operation not heard from for
`MISSED_BEATS` intervals as stalled, with the command that resumes it.

The heartbeat is a record of its own (`hb#<operation>`), written without a version condition:
it never touches the operation's record, so it can never overwrite step progress or make a
version-conditional save of the record fail, and it never changes the lease.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from mldr.cloud.control import ControlStore, RecordValue
from mldr.errors import ConfigurationError, MldrError

log = logging.getLogger(__name__)

#: Seconds between a run's heartbeats (tests and drills set it lower to see a death sooner).
HEARTBEAT_ENV = "MLDR_HEARTBEAT_SECONDS"
DEFAULT_EVERY = 10.0
#: A running operation not heard from for this many intervals is stalled: one or two late beats
#: (a busy control store, a pause between two DAG tasks) are not a death.
MISSED_BEATS = 6
_PREFIX = "hb#"


@dataclass(frozen=True)
class Heartbeat:
    run: str  # the run that wrote it (`fencing.Run.id`: host/pid/nonce)
    at: float  # epoch seconds
    every: float  # the interval it promised: a reader judges its silence by it


def heartbeat_every() -> float:
    text = os.environ.get(HEARTBEAT_ENV)
    if not text:
        return DEFAULT_EVERY
    try:
        every = float(text)
    except ValueError:
        every = 0.0
    if not 0.05 <= every <= 3600:
        raise ConfigurationError(f"{HEARTBEAT_ENV}={text!r}: give seconds between 0.05 and 3600")
    return every


def _key(operation_id: str) -> str:
    return f"{_PREFIX}{operation_id}"


def _parse(item: dict[str, RecordValue]) -> tuple[str, Heartbeat] | None:
    try:
        beat = Heartbeat(run=str(item["run"]), at=float(item["at"]), every=float(item["every"]))
        return str(item["operation"]), beat
    except (KeyError, ValueError):
        return None  # not one of ours (or partly written by hand): no heartbeat rather than a crash


def read_heartbeat(store: ControlStore, operation_id: str) -> Heartbeat | None:
    item = store.get_record(_key(operation_id))
    parsed = _parse(item) if item else None
    return parsed[1] if parsed else None


def read_heartbeats(store: ControlStore) -> dict[str, Heartbeat]:
    """Every operation's last heartbeat, by operation id."""
    found = (_parse(item) for item in store.records(_PREFIX))
    return dict(p for p in found if p is not None)


def beat(store: ControlStore, operation_id: str, run: str, every: float) -> None:
    store.put_record(
        _key(operation_id),
        {"operation": operation_id, "run": run, "at": round(time.time(), 3), "every": every},
    )


@contextmanager
def beating(store: ControlStore, operation_id: str, run: str) -> Iterator[None]:
    """Heartbeat for `operation_id` while the block runs (a thread); the first beat before it.

    A beat that cannot be written (the control store unreachable) is logged and the run goes
    on: the operation matters more than its liveness signal, and a reader then sees it stalled,
    which is what an operator without the control store would conclude anyway."""
    every = heartbeat_every()
    stop = threading.Event()

    def write() -> None:
        try:
            beat(store, operation_id, run, every)
        except MldrError as exc:
            log.warning("operation %s: heartbeat not written (%s); the run goes on", operation_id, exc)

    def loop() -> None:
        while not stop.wait(every):
            write()

    write()
    thread = threading.Thread(target=loop, name=f"mldr-heartbeat-{operation_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=every + 5)


def forget(store: ControlStore, operation_id: str) -> None:
    """Drop a finished operation's heartbeat: its record says how it ended."""
    try:
        store.delete_record(_key(operation_id))
    except MldrError as exc:
        log.warning("operation %s: heartbeat not removed (%s); readers ignore it", operation_id, exc)
