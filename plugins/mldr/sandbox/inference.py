"""The sandbox's inference server: one per region, serving the model rolled out in that region's bucket.

It stands in for the ECS service behind each region's load balancer. It loads the version named by
`models/<model>/CURRENT` in its own region's `model-artifacts` bucket (retrying in the background
until it appears: replication may not have delivered it yet) and re-reads CURRENT every few
seconds, swapping a new version in atomically, so a rollout or a failback reaches it without a
restart.

`/healthz` is what the (sandbox) Route 53 health check probes: healthy only when a model is loaded
and the region's S3 answers, so a region whose storage is down is failed away from even though
this process still runs. `/predict` speaks KServe v1 (`{"instances": [[...], ...]}`).

Given the region's ECS service (`--ecs-endpoint`), it answers like the service's tasks would
(`mldr.sandbox.capacity`): every route is 503 while the desired count is 0 (a pilot light) and
for the configured start-up time after a scale-up.

Run: `python -m mldr.sandbox.inference --region R --port P --s3-endpoint URL --bucket B`.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mldr.cloud.aws.clients import Timeouts, aws_call, botocore_config
from mldr.errors import MldrError
from mldr.ml.registry import DEFAULT_MODEL_NAME, ModelMetadata, load_estimator, read_current, read_metadata
from mldr.sandbox.capacity import TasksWatcher
from mldr.sandbox.listen import add_listen_arguments, server_socket
from mldr.sandbox.periodic import Periodic

log = logging.getLogger(__name__)

REGION_HEADER = "X-Mldr-Region"
MAX_INSTANCES = 1000
MAX_BODY_BYTES = 1 << 20
#: A stopped region's S3 must make /healthz fail fast: one attempt, short timeouts.
S3_TIMEOUTS = Timeouts(connect=1.0, read=2.0, max_attempts=1)


@dataclass(frozen=True)
class LoadedModel:
    """One immutable version in memory; replaced as a whole so a request never sees half a swap."""

    metadata: ModelMetadata
    estimator: Any

    @property
    def version(self) -> str:
        return self.metadata.version


class ModelLoader:
    """Keeps `current` in step with the bucket's CURRENT pointer, from a background thread."""

    def __init__(
        self, *, region: str, s3_client: Any, bucket: str, model_name: str, reload_seconds: float
    ) -> None:
        self.region = region
        self.s3 = s3_client
        self.bucket = bucket
        self.model_name = model_name
        self.reload_seconds = reload_seconds
        self.current: LoadedModel | None = None
        self.problem: str | None = "first check of CURRENT in progress"
        self._refresh_lock = threading.Lock()
        self._loop = Periodic(f"model-loader-{region}", self.refresh, lambda: self.reload_seconds)

    def _report(self, problem: str | None) -> None:
        # Log changes only: a standby bucket can lack a model for minutes, and one line every
        # reload interval would bury everything else.
        if problem != self.problem:
            if problem:
                log.warning("[%s] %s", self.region, problem)
            elif self.current:
                log.info("[%s] serving %s/%s", self.region, self.model_name, self.current.version)
        self.problem = problem

    def refresh(self) -> None:
        """Check CURRENT once; load and swap in a new version if it changed. Never raises MldrError:
        on failure the previous model keeps serving and the next refresh tries again."""
        with self._refresh_lock:
            where = f"s3://{self.bucket}/models/{self.model_name}"
            try:
                version = read_current(
                    self.s3, bucket=self.bucket, model_name=self.model_name, region=self.region
                )
                if version is None:
                    self._report(f"{where}/CURRENT does not exist yet; waiting for a model to be rolled out")
                    return
                if self.current is not None and self.current.version == version:
                    self._report(None)
                    return
                metadata = read_metadata(
                    self.s3,
                    bucket=self.bucket,
                    model_name=self.model_name,
                    version=version,
                    region=self.region,
                )
                estimator = load_estimator(
                    self.s3, bucket=self.bucket, artifact=metadata.artifact, region=self.region
                )
                # A model that cannot predict its own example is not swapped in.
                estimator.predict([list(metadata.example_instance)])
            except MldrError as exc:
                kept = f"; still serving {self.current.version}" if self.current else ""
                self._report(f"cannot load the model named by {where}/CURRENT: {exc}{kept}")
                return
            except (ValueError, TypeError, AttributeError) as exc:
                kept = f"; still serving {self.current.version}" if self.current else ""
                self._report(f"the model named by {where}/CURRENT fails on its example instance: {exc}{kept}")
                return
            previous = self.current.version if self.current else None
            self.current = LoadedModel(metadata=metadata, estimator=estimator)
            log.info(
                "[%s] loaded %s/%s from s3://%s (was %s)",
                self.region,
                self.model_name,
                version,
                self.bucket,
                previous,
            )
            self.problem = None

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()


class StorageProbe:
    """Whether the region's bucket answers, cached briefly so a burst of health probes costs one call."""

    def __init__(self, *, region: str, s3_client: Any, bucket: str, cache_seconds: float) -> None:
        self.region = region
        self.s3 = s3_client
        self.bucket = bucket
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._checked_at = -math.inf
        self._problem: str | None = None

    def problem(self) -> str | None:
        """None when S3 answered within the cache window, else why not."""
        # Concurrent probes wait for the one in flight and share its answer.
        with self._lock:
            if time.monotonic() - self._checked_at >= self.cache_seconds:
                self._problem = self._check()
                self._checked_at = time.monotonic()
            return self._problem

    def _check(self) -> str | None:
        try:
            with aws_call(f"s3://{self.bucket}", region=self.region):
                self.s3.head_bucket(Bucket=self.bucket)
        except MldrError as exc:
            return f"S3 does not answer: {exc}"
        return None


class RegionHeaderMiddleware:
    """Adds `X-Mldr-Region` to every response, errors included, so a client (or the edge) can
    always tell which region answered."""

    def __init__(self, app: ASGIApp, *, region: str) -> None:
        self.app = app
        self.header = (REGION_HEADER.lower().encode("latin-1"), region.encode("latin-1"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), self.header]
            await send(message)

        await self.app(scope, receive, send_with_header)


class BadRequest(ValueError):
    """The request body is malformed; the message says what is wrong."""


def parse_instances(
    body: bytes, *, feature_count: int, feature_names: tuple[str, ...] = ()
) -> list[list[float]]:
    """Validated `instances` from a KServe v1 request body, or BadRequest naming the problem."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict) or "instances" not in doc:
        raise BadRequest('request body must be a JSON object with "instances": [[f1, f2, ...], ...]')
    instances = doc["instances"]
    if not isinstance(instances, list):
        raise BadRequest(f"'instances' must be a list of lists of numbers, got {type(instances).__name__}")
    if not instances:
        raise BadRequest("'instances' is empty: send at least one instance")
    if len(instances) > MAX_INSTANCES:
        raise BadRequest(f"'instances' has {len(instances)} rows; at most {MAX_INSTANCES} per request")
    expected = f" ({', '.join(feature_names)})" if feature_names else ""
    rows: list[list[float]] = []
    for i, row in enumerate(instances):
        if not isinstance(row, list):
            raise BadRequest(
                f"instances[{i}] must be a list of {feature_count} numbers, got {type(row).__name__}"
            )
        if len(row) != feature_count:
            raise BadRequest(
                f"instances[{i}] has {len(row)} features; the model expects {feature_count}{expected}"
            )
        values: list[float] = []
        for j, value in enumerate(row):
            # bool is an int subclass, and json.loads accepts NaN and Infinity: reject both.
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise BadRequest(f"instances[{i}][{j}] is not a number: {value!r}")
            if not math.isfinite(value):
                raise BadRequest(f"instances[{i}][{j}] is not a finite number: {value!r}")
            values.append(float(value))
        rows.append(values)
    return rows


def create_app(
    *,
    region: str,
    s3_client: Any,
    bucket: str,
    model_name: str = DEFAULT_MODEL_NAME,
    reload_seconds: float = 2.0,
    health_cache_seconds: float = 0.5,
    tasks: TasksWatcher | None = None,
) -> FastAPI:
    """The inference app for one region. The loader (and the tasks watcher) run while the app's
    lifespan does; without a watcher the region always has tasks."""
    loader = ModelLoader(
        region=region,
        s3_client=s3_client,
        bucket=bucket,
        model_name=model_name,
        reload_seconds=reload_seconds,
    )
    storage = StorageProbe(
        region=region, s3_client=s3_client, bucket=bucket, cache_seconds=health_cache_seconds
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        log.info("[%s] inference server starting: model %s from s3://%s", region, model_name, bucket)
        loader.start()
        if tasks is not None:
            tasks.start()
        try:
            yield
        finally:
            loader.stop()
            if tasks is not None:
                tasks.stop()

    app = FastAPI(title=f"mldr inference ({region})", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.loader = loader
    app.state.storage = storage
    app.state.tasks = tasks

    @app.middleware("http")
    async def no_tasks_no_answer(request: Request, call_next: Any) -> Any:
        # What a load balancer with no healthy target answers: nothing behind it serves.
        problem = tasks.problem() if tasks is not None else None
        if problem is not None:
            return JSONResponse({"error": problem, "region": region}, status_code=503)
        return await call_next(request)

    app.add_middleware(RegionHeaderMiddleware, region=region)

    def no_model() -> JSONResponse:
        return JSONResponse(
            {"error": f"no model loaded: {loader.problem or 'loading'}", "region": region}, status_code=503
        )

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        # Sync def: FastAPI runs it in the thread pool, so a slow head_bucket blocks no one else.
        model = loader.current
        reason = f"no model loaded: {loader.problem or 'loading'}" if model is None else storage.problem()
        if model is None or reason is not None:
            return JSONResponse({"status": "unhealthy", "region": region, "reason": reason}, status_code=503)
        return JSONResponse({"status": "ok", "region": region, "model_version": model.version})

    @app.get("/model")
    def model_info() -> JSONResponse:
        model = loader.current
        if model is None:
            return no_model()
        md = model.metadata
        return JSONResponse(
            {
                "model_name": md.model_name,
                "version": md.version,
                "feature_names": list(md.feature_names),
                "example_instance": list(md.example_instance),
                "region": region,
            }
        )

    @app.post("/predict")
    async def predict(request: Request) -> JSONResponse:
        # The body is read here rather than declared as a pydantic model so every malformed input
        # gets a 400 with a plain reason instead of FastAPI's 422.
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return JSONResponse({"error": f"request body over {MAX_BODY_BYTES} bytes"}, status_code=413)
        model = loader.current  # one snapshot: the version reported is the version that predicted
        if model is None:
            return no_model()
        try:
            rows = parse_instances(
                body,
                feature_count=len(model.metadata.feature_names),
                feature_names=model.metadata.feature_names,
            )
        except BadRequest as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        predictions = await run_in_threadpool(model.estimator.predict, rows)
        return JSONResponse(
            {"predictions": [int(p) for p in predictions], "region": region, "model_version": model.version}
        )

    return app


def make_client(service: str, *, region: str, endpoint_url: str) -> Any:
    """A client for the region's (sandbox) S3 or ECS with short timeouts, so a stopped region fails fast."""
    session = boto3.session.Session(
        # The sandbox's moto accepts any keys; real ones from the environment win.
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
        aws_session_token=os.environ.get("AWS_SESSION_TOKEN"),
        region_name=region,
    )
    return session.client(  # type: ignore[call-overload]
        service, endpoint_url=endpoint_url, config=botocore_config(S3_TIMEOUTS)
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m mldr.sandbox.inference", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--region", required=True)
    add_listen_arguments(parser)
    parser.add_argument("--s3-endpoint", required=True, help="the region's S3 endpoint URL (a moto server)")
    parser.add_argument("--bucket", required=True, help="the region's model-artifacts bucket")
    parser.add_argument("--model-name", default=DEFAULT_MODEL_NAME)
    parser.add_argument("--reload-seconds", type=float, default=2.0)
    parser.add_argument(
        "--ecs-endpoint", help="the region's ECS endpoint: answer only while the service has tasks"
    )
    parser.add_argument("--cluster", help="the ECS cluster of the inference service")
    parser.add_argument("--service", help="the ECS service whose tasks this server plays")
    args = parser.parse_args(argv)

    # The first unpickle would import scikit-learn (seconds on a small machine) while a rollout
    # waits; import it now, while the sandbox is still provisioning.
    import sklearn.linear_model
    import sklearn.pipeline
    import sklearn.preprocessing  # noqa: F401
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    tasks = None
    if args.ecs_endpoint:
        tasks = TasksWatcher(
            region=args.region,
            ecs_client=make_client("ecs", region=args.region, endpoint_url=args.ecs_endpoint),
            cluster=args.cluster,
            service=args.service,
        )
    app = create_app(
        region=args.region,
        s3_client=make_client("s3", region=args.region, endpoint_url=args.s3_endpoint),
        bucket=args.bucket,
        model_name=args.model_name,
        reload_seconds=args.reload_seconds,
        tasks=tasks,
    )
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[server_socket(args)])


if __name__ == "__main__":
    main()
