"""The drill lock: one drill at a time per topology, wherever it runs, held in the control store.

The lock is the record `drill#lock` in the DR control-state table (reachable while either data
region is down), taken by a conditional write: created when absent, else replaced only if its
`version` is still the one read. The running drill refreshes its `heartbeat_at` every
`HEARTBEAT_SECONDS` (a conditional write too, so a drill whose lock was taken over notices). A
lock whose heartbeat is older than `STALE_AFTER_SECONDS` - or whose process is gone, when it was
taken on this host - is stale: the next drill or `mldr drill --recover` takes it over, saying so,
and reverts what that drill left. A live lock refuses a second drill, a `--recover`, and an
operator's failover or failback (`refuse_during_drill`, called by `open_operation`).

Staleness compares the holder's clock (the heartbeat it wrote) with the reader's: hosts that run
drills must keep their clocks within a few seconds of each other (NTP), far inside the bound.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from mldr.cloud.control import ControlStore, RecordValue, now_iso, wait_seconds_since
from mldr.errors import DrillInProgress, MldrError, PreconditionFailed

log = logging.getLogger(__name__)

LOCK_KEY = "drill#lock"
#: How often the running drill refreshes its lock.
HEARTBEAT_SECONDS = 5.0
#: A heartbeat older than this means the drill's process (or host) is gone. Six missed beats:
#: long enough for a busy machine, short enough that a dead drill does not block an operator.
STALE_AFTER_SECONDS = 30.0
#: Names this host in the lock; tests (and hosts whose names repeat) set it.
HOST_ENV = "MLDR_HOST_ID"


def host_id() -> str:
    return os.environ.get(HOST_ENV) or socket.gethostname()


def _process_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@dataclass(frozen=True)
class DrillLock:
    """The lock record as stored: who holds it (or held it last, when `held` is False)."""

    drill_id: str
    purpose: str  # "drill" | "recovery"
    host: str
    pid: int
    started_at: str
    heartbeat_at: str
    held: bool
    version: int

    @classmethod
    def from_record(cls, record: dict[str, RecordValue]) -> DrillLock:
        return cls(
            drill_id=str(record["drill_id"]),
            purpose=str(record["purpose"]),
            host=str(record["host"]),
            pid=int(record["pid"]),
            started_at=str(record["started_at"]),
            heartbeat_at=str(record["heartbeat_at"]),
            held=bool(int(record["held"])),
            version=int(record["version"]),
        )

    def record(self) -> dict[str, RecordValue]:
        return {
            "drill_id": self.drill_id,
            "purpose": self.purpose,
            "host": self.host,
            "pid": self.pid,
            "started_at": self.started_at,
            "heartbeat_at": self.heartbeat_at,
            "held": int(self.held),
            "version": self.version,
        }

    @property
    def heartbeat_age(self) -> float:
        return wait_seconds_since(self.heartbeat_at)

    def mine(self) -> bool:
        return self.host == host_id() and self.pid == os.getpid()

    def stale_because(self) -> str | None:
        """Why a held lock may be taken over, or None while its drill is alive."""
        if self.host == host_id() and self.pid != os.getpid() and not _process_alive(self.pid):
            return f"its process {self.pid} on this host ({self.host}) is gone"
        age = self.heartbeat_age
        if age > STALE_AFTER_SECONDS:
            return f"its last heartbeat is {age:.0f}s old (stale after {STALE_AFTER_SECONDS:g}s)"
        return None

    def live(self) -> bool:
        return self.held and self.stale_because() is None

    def describe(self) -> str:
        what = "drill" if self.purpose == "drill" else "recovery of drill"
        return (
            f"{what} {self.drill_id} (pid {self.pid} on {self.host}, started {self.started_at}, "
            f"heartbeat {self.heartbeat_age:.0f}s ago)"
        )

    def how_to_stop(self) -> str:
        return (
            f"stop it by interrupting it (Ctrl-C, or `kill -INT {self.pid}` on {self.host}, or mark its "
            f"Airflow task failed): it reverts itself; or wait for it to finish. If {self.host} is gone, "
            f"its lock goes stale {STALE_AFTER_SECONDS:g}s after its last heartbeat and "
            "`mldr drill --recover` reverts it"
        )


def read_lock(control: ControlStore) -> DrillLock | None:
    record = control.get_record(LOCK_KEY)
    return DrillLock.from_record(record) if record else None


def running_drill(control: ControlStore, *, except_drill: str | None = None) -> DrillLock | None:
    """The live lock of a drill other than `except_drill`, or None."""
    lock = read_lock(control)
    if lock is None or not lock.live() or lock.drill_id == except_drill:
        return None
    return lock


def wait_for_drill_to_stop(
    control: ControlStore,
    *,
    drill_id: str,
    timeout: float = STALE_AFTER_SECONDS + 2 * HEARTBEAT_SECONDS,
    poll: float = 1.0,
) -> DrillLock | None:
    """Wait (bounded) while drill `drill_id`'s lock is live; returns it if it still is.

    For a caller that knows the drill's process has ended (the DAG's teardown runs after the
    drill task): a lock still live then is a process killed a moment ago on another worker, whose
    heartbeat stops; waiting for it to go stale beats refusing to revert."""
    deadline = time.monotonic() + timeout
    while (lock := running_drill(control)) is not None and lock.drill_id == drill_id:
        if time.monotonic() >= deadline:
            return lock
        time.sleep(poll)
    return None


def refuse_during_drill(control: ControlStore, *, what: str, drill_id: str | None = None) -> None:
    """Refuse `what` (a failover, a failback) while a drill other than `drill_id` runs."""
    lock = running_drill(control, except_drill=drill_id)
    if lock is not None:
        raise DrillInProgress(
            f"refused: {what} while a DR drill runs would fight it ({lock.describe()}). To act now, "
            + lock.how_to_stop()
        )


class HeldLock:
    """The lock as its holder sees it: refreshed by a heartbeat thread until released."""

    def __init__(self, control: ControlStore, lock: DrillLock) -> None:
        self.control = control
        self.lock = lock
        self.lost: str | None = None  # why the lock is no longer ours (taken over)
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def drill_id(self) -> str:
        return self.lock.drill_id

    def _write(self, *, held: bool = True) -> None:
        """A conditional replace: only while the stored version is ours."""
        with self._guard:
            if self.lost:
                return
            new = replace(self.lock, version=self.lock.version + 1, heartbeat_at=now_iso(), held=held)
            try:
                self.control.put_record_if(LOCK_KEY, new.record(), expected={"version": self.lock.version})
            except PreconditionFailed:
                taker = read_lock(self.control)
                by = taker.describe() if taker else "another process"
                self.lost = f"the drill lock was taken over by {by}"
                log.error("drill %s: %s", self.drill_id, self.lost)
                return
            self.lock = new

    def beat(self) -> None:
        self._write()

    def check(self) -> None:
        """Raise if another process took the lock over (this drill must stop changing things)."""
        if self.lost:
            raise DrillInProgress(f"drill {self.drill_id} stops: {self.lost}")

    def start_heartbeat(self) -> HeldLock:
        def run() -> None:
            while not self._stop.wait(HEARTBEAT_SECONDS):
                try:
                    self.beat()
                except MldrError as exc:  # the store not answering: try again at the next beat
                    log.warning("drill %s: heartbeat not written: %s", self.drill_id, exc)
                if self.lost:
                    return

        self._thread = threading.Thread(target=run, name=f"drill-lock-{self.drill_id}", daemon=True)
        self._thread.start()
        return self

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=HEARTBEAT_SECONDS)
        try:
            self._write(held=False)
        except MldrError as exc:
            log.warning(
                "drill %s: lock not released (%s); it goes stale %gs after its last heartbeat",
                self.drill_id,
                exc,
                STALE_AFTER_SECONDS,
            )


def acquire(
    control: ControlStore,
    *,
    drill_id: str,
    purpose: str = "drill",
    say: Callable[[str], None] = log.info,
) -> HeldLock:
    """Take the drill lock for `drill_id` (and start its heartbeat); refuse while another drill's
    lock is live, naming it; take a stale one over, saying whose and why."""
    current = read_lock(control)
    now = now_iso()
    mine = DrillLock(
        drill_id=drill_id,
        purpose=purpose,
        host=host_id(),
        pid=os.getpid(),
        started_at=now,
        heartbeat_at=now,
        held=True,
        version=(current.version + 1) if current else 1,
    )
    if current is not None and current.held:
        stale = current.stale_because()
        if stale is None and not current.mine():
            raise DrillInProgress(
                f"another DR drill is running: {current.describe()}; not starting {purpose} {drill_id}. "
                "Wait for it, or " + current.how_to_stop()
            )
        if stale is not None:
            say(f"taking over the stale lock of {current.describe()}: {stale}")
    try:
        control.put_record_if(
            LOCK_KEY, mine.record(), expected=None if current is None else {"version": current.version}
        )
    except PreconditionFailed:
        winner = read_lock(control)
        raise DrillInProgress(
            "another process took the drill lock first"
            + (f": {winner.describe()}. Wait for it, or {winner.how_to_stop()}" if winner else "")
        ) from None
    return HeldLock(control, mine).start_heartbeat()
