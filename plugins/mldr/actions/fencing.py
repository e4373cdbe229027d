"""The DR lease: who may change the topology, and which region is active.

Taking the lease is a compare-and-set on the fencing token, which goes up by one for every
operation, so two concurrent failovers cannot both win, and anything holding an older token
(a stale task, a crashed CLI) is refused when it tries to act.

One operation can be run by more than one process over its life (a DAG task and its retry, a
crashed CLI and `--resume`), but by one at a time: the lease names the *run* holding it (a
nonce per process run, `Operation.run`), and every change is conditional on the token and that
run. A run that resumes an operation takes the lease over (`take_over`); from then on the older
run's next change is refused with `FencingConflict` naming the new run, instead of both
changing the topology and overwriting each other's progress. Runs are ordered by their rank
(the version of the operation record at which the run first saved it; the record's saves are
version-conditional, so two runs never share one): only a newer run takes over from an older
one, never the other way round.

The engine binds the run a step acts for (`acting_as`) around each step, so a step's lease
changes carry it without every runbook passing it along. Outside any step (a test, a tool
holding the lease by hand) the process is one run of its own, ranked lowest: it can take a
free lease and change what it took, never take one over.
"""

from __future__ import annotations

import contextvars
import dataclasses
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from mldr.cloud.control import ControlStore, Lease, Operation, new_run_id, now_iso
from mldr.errors import FencingConflict, LeaseHeld

log = logging.getLogger(__name__)


@dataclass
class Run:
    """One process run of an operation: its nonce and its rank (0 until it first saves the
    operation's record, which gives it one)."""

    id: str = field(default_factory=new_run_id)
    rank: int = 0


_RUN: contextvars.ContextVar[Run] = contextvars.ContextVar("mldr_lease_run")
#: The run of this process when no step is running (see the module's docstring).
_PROCESS_RUN = Run()


@contextmanager
def acting_as(run: Run) -> Iterator[None]:
    """Lease changes inside are made by (and conditional on) the run `run`."""
    reset = _RUN.set(run)
    try:
        yield
    finally:
        _RUN.reset(reset)


def current_run() -> Run:
    return _RUN.get(_PROCESS_RUN)


def describe_holder(op: Operation) -> str:
    run = f", run {op.run}" if op.run else ""
    return (
        f"operation {op.id} ({op.kind} {op.source} -> {op.target}, step {op.step}{run}) "
        f"started by {op.started_by} at {op.started_at}: {op.reason!r}"
    )


def _superseded(operation_id: str, run: Run, lease: Lease) -> FencingConflict:
    assert lease.operation is not None
    return FencingConflict(
        f"operation {operation_id} was taken over by run {lease.operation.run} "
        f"(at {lease.updated_at}, step {lease.operation.step}); this run ({run.id}) stops here and "
        "changes nothing more. `mldr status` shows the operation"
    )


def take(store: ControlStore, operation: Operation) -> Lease:
    """Hold the lease for `operation` with the next fencing token, for the current run;
    the same operation already holding it is taken over by this run (a resumed run)."""
    run = current_run()
    lease = store.read_lease()
    if lease.operation is not None:
        if lease.operation.id == operation.id:
            return take_over(store, operation.id)  # a resumed run: the lease is the operation's
        raise LeaseHeld(f"the DR lease is held by {describe_holder(lease.operation)}")
    new = Lease(
        active_region=lease.active_region,
        fencing_token=lease.fencing_token + 1,
        operation=dataclasses.replace(operation, run=run.id, run_rank=run.rank),
        updated_at=now_iso(),
        fenced_regions=lease.fenced_regions,
    )
    try:
        store.compare_and_set(expected=lease, lease=new)
    except FencingConflict:
        holder = store.read_lease().operation
        raise LeaseHeld(
            "another operation took the DR lease first" + (f": {describe_holder(holder)}" if holder else "")
        ) from None
    log.info("lease taken by %s (run %s) with fencing token %d", operation.id, run.id, new.fencing_token)
    return new


def take_over(store: ControlStore, operation_id: str) -> Lease:
    """Make the current run the holder of `operation_id`'s lease (a resume); a no-op when the
    operation does not hold the lease (not taken yet, or released) or this run already does.

    Only from an older run (lower rank), and conditional on the run it replaces: of two runs
    taking over at once, one wins, and the other is refused naming it."""
    run = current_run()
    lease = store.read_lease()
    if lease.operation is None or lease.operation.id != operation_id or lease.operation.run == run.id:
        return lease
    if lease.operation.run_rank >= run.rank:
        raise _superseded(operation_id, run, lease)
    new = dataclasses.replace(
        lease,
        operation=dataclasses.replace(lease.operation, run=run.id, run_rank=run.rank),
        updated_at=now_iso(),
    )
    try:
        store.compare_and_set(expected=lease, lease=new)
    except FencingConflict:
        raise _superseded(operation_id, run, store.read_lease()) from None
    log.info(
        "operation %s: run %s took the lease over from run %s", operation_id, run.id, lease.operation.run
    )
    return new


def _owned(store: ControlStore, operation_id: str, run: Run) -> Lease:
    lease = store.read_lease()
    if lease.operation is None or lease.operation.id != operation_id:
        holder = describe_holder(lease.operation) if lease.operation else "nobody"
        raise FencingConflict(f"operation {operation_id} no longer holds the DR lease (held by {holder})")
    if lease.operation.run != run.id:
        raise _superseded(operation_id, run, lease)
    return lease


def _change(store: ControlStore, operation_id: str, run: Run, expected: Lease, new: Lease) -> Lease:
    try:
        return store.compare_and_set(expected=expected, lease=new)
    except FencingConflict:
        _owned(store, operation_id, run)  # names the run that took over, if one did
        raise


def update(
    store: ControlStore,
    operation_id: str,
    *,
    step: str | None = None,
    active_region: str | None = None,
    fenced_regions: tuple[str, ...] | None = None,
) -> Lease:
    """Change the lease while holding it: only the current run holding it can do this."""
    run = current_run()
    lease = _owned(store, operation_id, run)
    assert lease.operation is not None
    new = dataclasses.replace(
        lease,
        operation=dataclasses.replace(lease.operation, step=step) if step else lease.operation,
        active_region=active_region or lease.active_region,
        fenced_regions=lease.fenced_regions if fenced_regions is None else fenced_regions,
        updated_at=now_iso(),
    )
    return _change(store, operation_id, run, lease, new)


def release(store: ControlStore, operation_id: str) -> Lease:
    """Let go of the lease (operation finished or aborted); idempotent. Only the run holding it
    releases it: an older run of the operation is refused, so it cannot free the lease under
    the run that took over."""
    run = current_run()
    lease = store.read_lease()
    if lease.operation is None or lease.operation.id != operation_id:
        return lease
    if lease.operation.run != run.id:
        raise _superseded(operation_id, run, lease)
    new = dataclasses.replace(lease, operation=None, updated_at=now_iso())
    return _change(store, operation_id, run, lease, new)


def add_fenced_region(store: ControlStore, region: str) -> Lease:
    """List `region` as fenced, by a caller that holds no operation (a fence duty done by a check).

    Only while no operation holds the lease: an operation in flight owns the fences (a failback
    lifts them). Compare-and-set on the token, so a failover or failback starting meanwhile wins
    and this raises `FencingConflict` / `LeaseHeld`; the caller leaves its duty for the next run."""
    lease = store.read_lease()
    if lease.operation is not None:
        raise LeaseHeld(f"the DR lease is held by {describe_holder(lease.operation)}")
    if region in lease.fenced_regions:
        return lease
    new = dataclasses.replace(lease, fenced_regions=(*lease.fenced_regions, region), updated_at=now_iso())
    return store.compare_and_set(expected=lease, lease=new)
