"""The sandbox's tasks: whether a region's inference server has running tasks to answer with.

In AWS a pilot-light standby (an ECS service at desired count 0) has no task behind its load
balancer: it answers nothing until scaled, and new tasks take time to start (image pull, model
load, target registration). The sandbox runs one inference process per region whatever the
count, so this watcher makes it behave like the service: it reads the region's ECS service
(desired count, and the start-up time from the service's `mldr:scale-up-seconds` tag) and
says why the region must not answer - 0 tasks, or tasks still starting.

The tag is the sandbox's setting (`mldr sandbox up --scale-up-seconds`), kept on the service so
a test or a person can change it on a running sandbox (`aws ecs tag-resource`).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from mldr.cloud.aws.clients import aws_call
from mldr.errors import MldrError
from mldr.sandbox.periodic import Periodic

log = logging.getLogger(__name__)

#: The ECS service tag holding how long new tasks take to serve, in seconds.
SCALE_UP_TAG = "mldr:scale-up-seconds"


@dataclass(frozen=True)
class Tasks:
    """What the region's service runs: `desired` tasks, serving from `ready_at` (monotonic)."""

    desired: int
    ready_at: float


def next_tasks(previous: Tasks | None, desired: int, *, now: float, scale_up_seconds: float) -> Tasks:
    """The tasks after one look at the service's desired count.

    The first look finds the tasks the sandbox started with already running; from 0 to more,
    the new tasks serve `scale_up_seconds` later; between non-zero counts, the running tasks
    keep serving (a warm standby answers at once, at its smaller size).
    """
    desired = max(0, desired)
    if previous is None:
        return Tasks(desired=desired, ready_at=now)
    if desired == 0:
        return Tasks(desired=0, ready_at=math.inf)
    if previous.desired == 0:
        return Tasks(desired=desired, ready_at=now + max(0.0, scale_up_seconds))
    return Tasks(desired=desired, ready_at=previous.ready_at)


def tasks_problem(tasks: Tasks | None, *, now: float) -> str | None:
    """Why the region has nothing to answer with, or None when its tasks serve (or are unknown)."""
    if tasks is None:
        return None
    if tasks.desired == 0:
        return "0 tasks running: the service's desired count is 0 (pilot light); it answers once scaled up"
    if now < tasks.ready_at:
        return f"{tasks.desired} task(s) starting after a scale-up: serving in {tasks.ready_at - now:.1f}s"
    return None


def _scale_up_seconds(service: dict[str, Any]) -> float:
    for tag in service.get("tags") or []:
        if tag.get("key") == SCALE_UP_TAG:
            try:
                value = float(tag.get("value", ""))
            except ValueError:
                log.warning("tag %s=%r is not a number of seconds; using 0", SCALE_UP_TAG, tag.get("value"))
                return 0.0
            return value if math.isfinite(value) and value > 0 else 0.0
    return 0.0


class TasksWatcher:
    """Follows one ECS service from a background thread; `problem()` is what the server answers."""

    def __init__(
        self, *, region: str, ecs_client: Any, cluster: str, service: str, poll_seconds: float = 0.5
    ) -> None:
        self.region = region
        self.ecs = ecs_client
        self.cluster = cluster
        self.service = service
        self.poll_seconds = poll_seconds
        self.tasks: Tasks | None = None
        self._loop = Periodic(f"tasks-{region}", self.look, lambda: self.poll_seconds)

    def problem(self) -> str | None:
        return tasks_problem(self.tasks, now=time.monotonic())

    def look(self) -> None:
        """Read the service once; on an error keep what was known (a stopped region's ECS is
        as silent as its S3, which the health check already reports)."""
        try:
            with aws_call(f"ECS service {self.cluster}/{self.service}", region=self.region):
                services = self.ecs.describe_services(
                    cluster=self.cluster, services=[self.service], include=["TAGS"]
                )["services"]
        except MldrError:
            return
        if not services:  # not provisioned yet
            return
        service = services[0]
        before = self.tasks
        self.tasks = next_tasks(
            before,
            int(service.get("desiredCount", 0)),
            now=time.monotonic(),
            scale_up_seconds=_scale_up_seconds(service),
        )
        if before is None or before.desired != self.tasks.desired:
            log.info(
                "[%s] ECS service %s: desired count %s -> %d%s",
                self.region,
                self.service,
                before.desired if before else "?",
                self.tasks.desired,
                f", serving in {self.tasks.ready_at - time.monotonic():.1f}s"
                if math.isfinite(self.tasks.ready_at) and self.tasks.ready_at > time.monotonic()
                else "",
            )

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()
