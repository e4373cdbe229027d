"""The `logical-corruption` drill: a bad pipeline run damages data and the model, replication copies
the damage, verification detects it, the point-in-time restore and the model rollback undo it.

    seed a small dataset -> recovery point (checksums; the model CURRENT serves and its manifest)
      -> the chosen time -> good writes (what the restore gives up) -> the bad run: overwrites and
      deletes part of the dataset, overwrites the served model's training snapshot, registers a
      broken model version -> replication copies it -> detection in the standby against the
      recovery point (the dataset's checksums; the model's recovery point through the nightly
      verification) -> `restore` to the chosen time + `rollback` of the model -> both regions
      equal to the recovery point, exactly

No region fails and nothing fails over: this is the failure replication cannot help with. The
restore and the rollback are the runbooks an operator runs (`mldr restore`), started with the
reason "DR drill <id>: logical-corruption" and no approval step. The dataset lives under the
drill's own prefix of training-data (removed at the end, like canaries); the model damage is to
the served model itself, which the drill's rollback - or `recover()` after an interruption -
puts back. The time to restore to is in the drill's control-state record before the damage.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mldr.checks.dataset_state import (
    State,
    StateDiff,
    WrittenVersion,
    compare_state,
    current_state,
    written_between,
)
from mldr.checks.point_in_time import iso
from mldr.cloud import Cloud
from mldr.cloud.objects import streamed_sha256
from mldr.errors import MldrError, NotFound
from mldr.ml.registry import (
    ARTIFACTS_DATASET,
    DEFAULT_MODEL_NAME,
    RecoveryPointManifest,
    current_key,
    manifest_key,
    metadata_key,
)
from mldr.runbooks.drill import lock as drill_lock
from mldr.runbooks.drill.load import canary_prefix
from mldr.runbooks.drill.params import DrillParams, canary_dataset
from mldr.runbooks.drill.preflight import check_ready
from mldr.runbooks.drill.recover import cleanup_canaries, recover, run_operation
from mldr.runbooks.drill.state import DrillState, DrillStateStore, Phase
from mldr.runbooks.engine import OperationRecord
from mldr.runbooks.params import Mode, OperationParams, RestoreTarget, RollbackTarget
from mldr.topology import Topology

log = logging.getLogger(__name__)

#: The drill's dataset: small on purpose (a drill proves the path; bench/restore.py measures scale).
SEED_KEYS = 20
SEED_BYTES = 2048
#: How long replication gets to carry the seeded data, the damage and the restore to the standby.
REPLICATION_TIMEOUT = 30.0


@dataclass
class ModelPoint:
    """The model as the recovery point knows it: the version served and its objects' checksums."""

    model: str
    version: str
    refs: dict[str, str]  # "dataset/key" -> SHA-256 (hex) recorded in the manifest


@dataclass
class Measures:
    seeded: int = 0
    chosen_at: float = 0.0
    damage_at: float = 0.0
    overwritten: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    broken_version: str = ""
    given_up: tuple[WrittenVersion, ...] = ()
    detected: dict[str, Any] = field(default_factory=dict)
    restored: dict[str, Any] = field(default_factory=dict)
    after: dict[str, StateDiff] = field(default_factory=dict)
    model_after: dict[str, str | None] = field(default_factory=dict)


def _second_boundary() -> float:
    """Wait until a new second begins and return it: stores keep a version's time to the second,
    so writes on either side of a boundary are told apart by the history."""
    boundary = math.floor(time.time()) + 1.0
    time.sleep(max(0.0, boundary - time.time()) + 0.05)
    return boundary


class CorruptionDrill:
    def __init__(
        self, topology: Topology, cloud: Cloud, params: DrillParams, *, say: Callable[[str], None] = log.info
    ) -> None:
        self.topology, self.cloud = topology, cloud
        self.params = params.validated(topology)
        self.id = str(self.params.drill_id)
        self.source = topology.primary_region
        self.standby = str(self.params.target_region)
        self.dataset = canary_dataset(topology)
        self.prefix = canary_prefix(self.dataset.prefix, self.id)
        self.control = cloud.control()
        self.drills = DrillStateStore(self.control)
        self.state = DrillState(
            drill_id=self.id, scenario=self.params.scenario.value, source=self.source, target=self.standby
        )
        self._say = say
        self.t0 = time.time()
        self.events: dict[str, float] = {}
        self.durations: dict[str, float] = {}
        self.notes: list[str] = []
        self.records: dict[str, OperationRecord] = {}
        self.m = Measures()
        self.snapshot: State = {}
        self.model: ModelPoint | None = None

    def say(self, message: str) -> None:
        self._say(f"[{time.time() - self.t0:6.1f}s] {message}")

    def phase(self, phase: Phase, message: str = "") -> None:
        self.state.phase = phase
        if message:
            self.state.message = message
        self.drills.save(self.state)

    @property
    def point(self) -> ModelPoint:
        if self.model is None:
            raise MldrError("the model's recovery point is read before the damage, which has not happened")
        return self.model

    def bucket(self, region: str, dataset: str | None = None) -> str:
        return self.topology.dataset(dataset or self.dataset.name).buckets[region]

    # -- the procedure -------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        from mldr.runbooks.drill.corruption_document import corruption_document

        self.t0 = time.time()
        lock = drill_lock.acquire(self.control, drill_id=self.id, say=self._say)
        try:
            recovered = recover(self.topology, self.cloud, say=self._say, lock=lock)
            if recovered:
                self.notes.append("before starting, recovered an interrupted drill: " + "; ".join(recovered))
            check_ready(self.topology, self.cloud, self.params.scenario, drill_id=self.id)
            self.drills.save(self.state)
            try:
                self.seed()
                self.record_point()
                self.good_writes()
                lock.check()
                self.bad_run()
                self.detect()
                lock.check()
                self.restore()
                self.check()
            except BaseException as exc:
                self.abort(exc)
                raise
            self.phase(Phase.DONE, "completed")
        finally:
            removed = cleanup_canaries(self.topology, self.cloud, self.id)
            self.notes.append(f"removed the drill's {removed} object version(s) from both regions")
            lock.release()
        return corruption_document(self)

    def seed(self) -> None:
        store = self.cloud.objects(self.source)
        bucket = self.bucket(self.source)
        for i in range(SEED_KEYS):
            store.put(bucket, f"{self.prefix}part-{i:03d}.csv", os.urandom(SEED_BYTES // 2).hex().encode())
        self.m.seeded = SEED_KEYS
        self.snapshot = current_state(store, bucket, self.prefix)
        self._wait_standby(lambda: self.snapshot, what="the seeded dataset")
        self.say(f"seeded {SEED_KEYS} keys under s3://{bucket}/{self.prefix}, replicated to {self.standby}")

    def record_point(self) -> None:
        """The recovery point: the dataset's checksums and the served model's manifest; then the
        chosen time, in the control-state record before anything is damaged."""
        store, bucket = self.cloud.objects(self.source), self.bucket(self.source, ARTIFACTS_DATASET)
        model = DEFAULT_MODEL_NAME
        version = str(store.get_json(bucket, current_key(model))["version"])
        manifest = RecoveryPointManifest.from_dict(store.get_json(bucket, manifest_key(model, version)))
        self.model = ModelPoint(
            model=model, version=version, refs={f"{r.dataset}/{r.key}": r.sha256 for r in manifest.refs}
        )
        self.m.chosen_at = _second_boundary() + 0.5
        time.sleep(max(0.0, self.m.chosen_at - time.time()))
        self.events["chosen_at"] = self.m.chosen_at
        undo = (
            f"restore to {iso(self.m.chosen_at)}: mldr restore --dataset {self.dataset.name} --prefix "
            f"{self.prefix} --to {iso(self.m.chosen_at)}; mldr restore --model {model} --version {version}"
        )
        self.state.restore_to = self.m.chosen_at
        self.phase(Phase.STARTING, f"recovery point recorded; if interrupted after the damage: {undo}")
        self.say(
            f"recovery point: {len(self.snapshot)} keys, model {model} serving {version}; "
            f"time {iso(self.m.chosen_at)}"
        )

    def good_writes(self) -> None:
        """Writes after the chosen time, before the damage: a restore to the chosen time gives them up."""
        _second_boundary()
        store, bucket = self.cloud.objects(self.source), self.bucket(self.source)
        store.put(bucket, f"{self.prefix}late-000.csv", b"written after the recovery point\n")
        store.put(bucket, f"{self.prefix}part-001.csv", b"a good edit after the recovery point\n")

    def bad_run(self) -> None:
        self.m.damage_at = _second_boundary()
        self.events["damage_at"] = self.m.damage_at
        broken = f"{self.point.version}-broken-{self.id[-6:]}"
        # before the first bad write: a recovery rolls the model back and unregisters `broken`
        self.state.damaged, self.state.broken_version = True, broken
        self.phase(Phase.FAULT)
        store, bucket = self.cloud.objects(self.source), self.bucket(self.source)
        keys = sorted(self.snapshot)
        self.m.overwritten = [k for i, k in enumerate(keys) if i % 3 == 0]
        self.m.deleted = [k for i, k in enumerate(keys) if i % 5 == 2 and i % 3 != 0]
        for key in self.m.overwritten:
            store.put(bucket, key, b"garbage from a bad pipeline run\n")
        for key in self.m.deleted:
            store.delete(bucket, key)
        artifacts = self.bucket(self.source, ARTIFACTS_DATASET)
        # The bad run retrains on garbage: the served version's training snapshot is overwritten,
        # and a broken version is registered and served (the same estimator: it loads, it is just
        # not the model to serve).
        training = next(ref for ref in self.point.refs if ref.startswith(f"{self.dataset.name}/"))
        store.put(self.bucket(self.source), training.split("/", 1)[1], b"garbage,from,a,bad,run\n")
        metadata = store.get_json(artifacts, metadata_key(self.point.model, self.point.version))
        store.put_json(artifacts, metadata_key(self.point.model, broken), {**metadata, "version": broken})
        store.put_json(artifacts, current_key(self.point.model), {"version": broken})
        self.m.broken_version = broken
        self.say(
            f"BAD RUN: {len(self.m.overwritten)} keys overwritten, {len(self.m.deleted)} deleted, the "
            f"training snapshot {training} overwritten, {broken} registered and made CURRENT"
        )

    def detect(self) -> None:
        """Replication copies the damage; the standby, checked against the recovery point, shows it."""
        source_state = current_state(self.cloud.objects(self.source), self.bucket(self.source), self.prefix)
        waited = self._wait_standby(lambda: source_state, what="the damage")
        self.events["damage_replicated_at"] = time.time()
        standby = current_state(self.cloud.objects(self.standby), self.bucket(self.standby), self.prefix)
        diff = compare_state(self.snapshot, standby)
        model_diff = self._model_diff(self.standby)
        self.m.detected = {
            "replicated_after_seconds": round(waited, 3),
            "dataset": _diff_dict(diff),
            "model": model_diff,
            "verification": self._verification(),
        }
        self.events["detected_at"] = time.time()
        if diff.exact or not model_diff["broken"]:
            raise MldrError(
                f"drill {self.id}: the damage was not detected in {self.standby} against the recovery point "
                f"(dataset: {diff.summary()}; model: {model_diff}): detection is broken"
            )
        self.say(f"detected in {self.standby}: dataset {diff.summary()}; model {model_diff['summary']}")

    def _model_diff(self, region: str) -> dict[str, Any]:
        store = self.cloud.objects(region)
        try:
            pointer = store.get_json(self.bucket(region, ARTIFACTS_DATASET), current_key(self.point.model))
            serving: str | None = str(pointer["version"])
        except NotFound:
            serving = None
        mismatched = []
        for ref, sha in sorted(self.point.refs.items()):
            dataset, key = ref.split("/", 1)
            try:
                got = streamed_sha256(store, self.bucket(region, dataset), key).hex()
            except NotFound:
                got = None
            if got != sha:
                mismatched.append(ref)
        broken = serving != self.point.version or bool(mismatched)
        return {
            "serving": serving,
            "expected": self.point.version,
            "mismatched_objects": mismatched,
            "broken": broken,
            "summary": f"CURRENT {serving} (recovery point: {self.point.version}), "
            f"{len(mismatched)} recovery-point object(s) differ from the manifest",
        }

    def _verification(self) -> dict[str, Any]:
        """The nightly verification's own verdict on the served version's recovery point."""
        from mldr.checks.verification.run import verify

        try:
            report = verify(
                self.cloud, self.topology, datasets=[ARTIFACTS_DATASET], source_region=self.source
            )
        except MldrError as exc:
            return {"error": str(exc)}
        for result in report.datasets:
            for point in result.recovery_points or []:
                if point.model == self.point.model and point.version == self.point.version:
                    return {
                        "state": point.state,
                        "objects": [o.to_dict() for o in point.objects if o.state != "ok"],
                    }
        return {"state": "not checked"}

    def restore(self) -> None:
        self.phase(Phase.RESTORE)
        self.m.given_up = written_between(
            self.cloud.objects(self.source),
            self.bucket(self.source),
            self.prefix,
            after=self.m.chosen_at,
            before=self.m.damage_at,
        )
        started = time.time()
        target = RestoreTarget(dataset=self.dataset.name, at=self.m.chosen_at, prefix=self.prefix)
        record = self._operation(_params("restore", self.source, self.state, restore=target))
        self.durations["restore"] = round(time.time() - started, 3)
        started = time.time()
        self.records["rollback"] = rollback_to(
            self.topology, self.cloud, self.state, say=self.say, on_open=self._opened("rollback")
        )
        self.durations["rollback"] = round(time.time() - started, 3)
        unregister_broken(self.topology, self.cloud, self.state)
        self.events["restored_at"] = time.time()
        applied = record.steps["restore_apply"].result or {}
        self.m.restored = {
            "reverted": applied.get("reverted"),
            "deleted": applied.get("deleted"),
            "bytes": applied.get("bytes"),
            "seconds": self.durations["restore"],
            "model_seconds": self.durations["rollback"],
        }
        self.say(
            f"restored in {self.durations['restore']:.1f}s ({applied.get('reverted')} reverted, "
            f"{applied.get('deleted')} deleted, {applied.get('bytes')} bytes); model rolled back in "
            f"{self.durations['rollback']:.1f}s"
        )

    def _opened(self, kind: str) -> Callable[[str], None]:
        def save(op_id: str) -> None:
            self.state.operations[kind] = op_id
            self.drills.save(self.state)

        return save

    def _operation(self, params: OperationParams) -> OperationRecord:
        record = run_operation(
            self.topology,
            self.cloud,
            params,
            lambda m: self.say(m.strip()),
            self._opened(params.kind),
            drill_id=self.id,
            must_change=True,
        )
        self.records[params.kind] = record
        return record

    def check(self) -> None:
        self.phase(Phase.CHECK)
        self._wait_standby(lambda: self.snapshot, what="the restore", fail=False)
        for region in self.topology.region_names:
            state = current_state(self.cloud.objects(region), self.bucket(region), self.prefix)
            self.m.after[region] = compare_state(self.snapshot, state)
            model = self._model_diff(region)
            self.m.model_after[region] = None if not model["broken"] else model["summary"]
            self.say(
                f"after the restore, {region}: dataset {self.m.after[region].summary()}; "
                f"model {model['summary']}"
            )

    def _wait_standby(self, expected: Callable[[], State], *, what: str, fail: bool = True) -> float:
        started = time.monotonic()
        store, bucket = self.cloud.objects(self.standby), self.bucket(self.standby)
        while current_state(store, bucket, self.prefix) != expected():
            if time.monotonic() - started > REPLICATION_TIMEOUT:
                if fail:
                    raise MldrError(
                        f"replication did not bring {what} to {self.standby} within {REPLICATION_TIMEOUT:g}s "
                        f"(s3://{bucket}/{self.prefix}): check the replicator (`mldr lag`)"
                    )
                return time.monotonic() - started
            time.sleep(0.3)
        return time.monotonic() - started

    def abort(self, exc: BaseException) -> None:
        """Serve the model of before again when the drill stops after damaging it (the dataset is
        the drill's own, removed at the end); `recover()` does the same after a killed drill."""
        self.say(f"drill stopped at phase {self.state.phase}: {exc!r}; reverting")
        self.state.message = f"stopped: {exc}"
        self.state.phase = Phase.FAILED
        self.drills.save(self.state)
        try:
            done = undo_damage(self.topology, self.cloud, self.state, say=self.say)
        except MldrError as undo_error:
            self.say(
                f"could NOT roll the model back ({undo_error}): run `mldr drill --recover`, or "
                f"{self.state.message}"
            )
            return
        self.say("reverted: " + ("; ".join(done) or "nothing to undo"))


def _params(
    kind: str,
    region: str,
    state: DrillState,
    *,
    restore: RestoreTarget | None = None,
    rollback: RollbackTarget | None = None,
) -> OperationParams:
    return OperationParams(
        kind=kind,
        target_region=region,
        mode=Mode.PLANNED,
        reason=f"DR drill {state.drill_id}: {state.scenario}",
        requested_by="drill",
        require_approval=False,
        restore=restore,
        rollback=rollback,
    )


def rollback_to(
    topology: Topology,
    cloud: Cloud,
    state: DrillState,
    *,
    say: Callable[[str], None],
    on_open: Callable[[str], None] = lambda _id: None,
) -> OperationRecord:
    """The model rollback to the drill's recorded time: CURRENT and the recovery point of then."""
    if state.restore_to is None:
        raise MldrError(f"drill {state.drill_id} recorded no time to restore to")
    target = RollbackTarget(model=DEFAULT_MODEL_NAME, at=state.restore_to)
    return run_operation(
        topology,
        cloud,
        _params("rollback", topology.primary_region, state, rollback=target),
        lambda m: say(m.strip()),
        on_open,
        drill_id=state.drill_id,
    )


def unregister_broken(topology: Topology, cloud: Cloud, state: DrillState) -> str | None:
    """The broken version is served nowhere once the model is rolled back: its registration goes
    too (a delete marker in the primary, replicated; history is kept). Returns the version
    unregistered, None when there was nothing to remove."""
    if not state.broken_version:
        return None
    region = topology.primary_region
    bucket = topology.dataset(ARTIFACTS_DATASET).buckets[region]
    key = metadata_key(DEFAULT_MODEL_NAME, state.broken_version)
    store = cloud.objects(region)
    try:
        store.head(bucket, key)
    except NotFound:
        return None  # never registered (stopped before), or already removed: nothing to add to its history
    store.delete(bucket, key)
    return state.broken_version


def undo_damage(
    topology: Topology, cloud: Cloud, state: DrillState, *, say: Callable[[str], None]
) -> list[str]:
    """After a logical-corruption drill that stopped once it had damaged the model: roll the model
    back to the recorded time, unless the drill's own rollback completed, and unregister the
    broken version. Its dataset needs no restore: it is the drill's own prefix, removed with the
    canaries."""
    from mldr.runbooks.engine import OperationStatus, OperationStore

    if state.scenario != "logical-corruption" or not state.damaged:
        return []
    done: list[str] = []
    rollback = state.operations.get("rollback")
    record = OperationStore(cloud.control()).load(rollback) if rollback else None
    if record is None or record.status is not OperationStatus.COMPLETED:
        rolled = rollback_to(topology, cloud, state, say=say)
        done.append(f"rolled {DEFAULT_MODEL_NAME} back to {iso(state.restore_to or 0.0)} ({rolled.id})")
    broken = unregister_broken(topology, cloud, state)
    if broken:
        done.append(f"unregistered the broken version {broken}")
    return done


def _diff_dict(diff: StateDiff) -> dict[str, Any]:
    return {
        "exact": diff.exact,
        "missing": list(diff.missing),
        "extra": list(diff.extra),
        "different": list(diff.different),
        "summary": diff.summary(),
    }
