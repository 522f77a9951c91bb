"""The Ray Serve deployment: a FastAPI ingress answering MLflow's scoring protocol, the prediction cache
in front of the model, concurrent requests' rows batched into one model call, and the model swapped in
place when its registry alias moves (``reconfigure``) — cache keys carry the version, so a swap never
serves a stale prediction.
"""

# No `from __future__ import annotations`: FastAPI reads the handlers' annotations at run time.
import asyncio
import contextlib
import hmac
import logging
import os
import time
from collections.abc import Callable
from typing import Any

import orjson
import pyarrow as pa
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from ray import serve
from starlette.datastructures import Headers
from starlette.types import Receive, Scope, Send

from app.monitor.client import (
    FLUSH_EVERY_S,
    MonitorClient,
    answer_score,
    monitor_spec,
    monitored_features,
)
from app.serve.cache import PredictionCache, row_keys
from app.serve.feedback import parse_feedback
from app.serve.openapi import FEEDBACK_DOC, PREDICT_DOC
from app.serve.rows import Rows
from app.serve.schema import RequestError, parse_rows
from app.serve.served import ServedModel, alias_version, load_served
from app.serve.telemetry import ServeMetrics
from app.serve_config import ServeConfig

logger = logging.getLogger(__name__)

# Rows at which a model call leaves the event loop for a thread: smaller calls are quicker inline.
THREAD_ROWS = 256
# Answered by ``Ingress`` itself; the FastAPI routes of the same paths below document them.
PREDICT_PATHS = frozenset({"/predict", "/invocations"})


class Ingress(FastAPI):
    """The service's FastAPI app, with ``POST /predict`` and ``/invocations`` handed straight to the
    replica: FastAPI's middleware, routing and dependency solving took a fifth of the replica's time per
    one-row request (bench/serve.py). Every other route, the OpenAPI schema and the docs are FastAPI's."""

    _server: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and _route(scope) in PREDICT_PATHS:
            if self._server is None:  # one replica per process: look it up once
                self._server = serve.get_replica_context().servable_object
            await self._server.answer_asgi(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def _route(scope: Scope) -> str:
    """The path below the app's root path (Serve's route prefix), as Starlette routes it."""
    path, root = scope["path"], scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


async def _request_body(receive: Receive) -> bytes | None:
    """The whole body, or None when the client went away first."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


api = Ingress(
    title="automl prediction service",
    description="Predictions from a model trained by automl, served by Ray Serve. Send rows in MLflow's "
    "scoring protocol (dataframe_split, dataframe_records, inputs) as JSON, or Arrow IPC / Parquet.",
    version="1",
)


# Module-level helpers come before the deployment: Serve serialises the class when it is decorated.
def _record(server: Any, start: float, response: Response, rows: int, hits: int, misses: int):
    server.metrics.record(
        latency_s=time.perf_counter() - start,
        status=response.status_code,
        predicted=rows - hits,
        hits=hits,
        misses=misses,
    )
    return response


def _monitor_client(
    served: ServedModel, config: ServeConfig, tracking_uri: str | None
) -> MonitorClient | None:
    cfg = config.monitor
    if not cfg.enabled or cfg.sample_rate <= 0:
        return None
    pre = served.predictor.preprocessor

    def spec() -> dict[str, Any]:
        return monitor_spec(
            served.predictor,
            name=served.name,
            version=served.version,
            source=served.source,
            config=cfg,
            tracking_uri=tracking_uri,
        )

    return MonitorClient(spec, features=monitored_features(pre), sample_rate=cfg.sample_rate)


def _has_gpu() -> bool:
    import ray

    return ray.is_initialized() and bool(ray.get_gpu_ids())


def _api_key(config: ServeConfig) -> str | None:
    if not config.api_key_env:
        return None
    key = os.environ.get(config.api_key_env)
    if not key:
        raise ValueError(
            f"api_key_env names {config.api_key_env!r}, which is not set in the replica's environment"
        )
    return key


@serve.deployment(name="ModelServer", max_ongoing_requests=64, health_check_period_s=5)
@serve.ingress(api)
class ModelServer:
    """Serves one model. ``config`` is the ``ServeConfig`` (``args`` of serve_config.yaml); the model
    source comes with ``user_config`` (``{"model": ..., "tracking_uri": ...}``), so a changed model
    reaches running replicas through ``reconfigure`` without a restart."""

    def __init__(self, config: dict[str, Any], *, loader: Callable | None = None) -> None:
        self.config = ServeConfig.model_validate(config)
        self.loader = loader
        self.model: ServedModel | None = None
        self.metrics = ServeMetrics()
        self.cache = PredictionCache.from_config(self.config)
        self._api_key = _api_key(self.config)
        self.monitor: MonitorClient | None = None
        self._tasks: list[asyncio.Task] = []
        self._source: tuple[str | None, str | None] = (None, None)
        self._swap_lock = asyncio.Lock()
        self._predict.set_max_batch_size(self.config.max_batch_size)
        self._predict.set_batch_wait_timeout_s(self.config.batch_wait_timeout_s)

    async def reconfigure(self, user_config: dict[str, Any]) -> None:
        """Load the model named by ``user_config`` (unchanged source: nothing to do)."""
        source = user_config.get("model") or self.config.model
        tracking_uri = user_config.get("tracking_uri") or self.config.tracking_uri
        if not source:
            raise ValueError("no model to serve: set args.model (or user_config.model) in serve_config.yaml")
        if (source, tracking_uri) != self._source:
            await self._swap(source, tracking_uri)
            self._source = (source, tracking_uri)
        self._start_background()

    async def _swap(self, source: str, tracking_uri: str | None) -> None:
        async with self._swap_lock:
            served = await asyncio.to_thread(
                load_served,
                source,
                tracking_uri=tracking_uri,
                loader=self.loader,
                label=self.config.model_version,
            )
            if _has_gpu():  # a replica given num_gpus predicts on it (XGBoost, CatBoost)
                served.predictor.use_device("cuda")
            old, self.model = self.model, served
            self.metrics.set_model(served.name, served.version)
            self.monitor = _monitor_client(served, self.config, tracking_uri)
            if old is not None:
                logger.info("now serving %s version %s (was %s)", served.name, served.version, old.version)

    def _start_background(self) -> None:
        if self._tasks:
            return
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self.metrics.run_flusher()))
        self._tasks.append(loop.create_task(self._send_samples()))
        if self.config.model_poll_s:
            self._tasks.append(loop.create_task(self._poll_alias(self.config.model_poll_s)))

    async def _send_samples(self) -> None:
        """Hand the sampled rows to the monitor actor, off every request's path."""
        while True:
            await asyncio.sleep(FLUSH_EVERY_S)
            if self.monitor is not None:
                with contextlib.suppress(Exception):  # a slow or dead monitor costs the service nothing
                    await self.monitor.flush()

    async def _poll_alias(self, every_s: float) -> None:
        """Follow a ``models:/NAME@alias`` source: load the new version when the alias moves."""
        while True:
            await asyncio.sleep(every_s)
            source, tracking_uri = self._source
            if source is None or self.model is None:
                continue
            try:
                version = await asyncio.to_thread(alias_version, source, tracking_uri=tracking_uri)
                serving = self.model.predictor.metadata.get("registered_version")
                if version is not None and version != serving:
                    await self._swap(source, tracking_uri)
            except Exception as exc:  # noqa: BLE001 - a registry hiccup keeps the current model serving
                logger.warning("checking %s for a new version failed: %s", source, exc)

    @api.get("/healthz", summary="The process is up")
    async def healthz(self) -> dict[str, str]:
        return {"status": "ok"}

    @api.get("/readyz", summary="A model is loaded; the cache's state is reported, not required")
    async def readyz(self) -> JSONResponse:
        cache = {"backend": type(self.cache.backend).__name__, "ok": await self.cache.ping()}
        if self.model is None:
            return JSONResponse({"ready": False, "cache": cache}, status_code=503)
        body = {"ready": True, "model": self.model.name, "version": self.model.version, "cache": cache}
        return JSONResponse(body)

    @api.get("/model", summary="The served model: name, version, task, features with types, classes, metrics")
    async def model_info(self, request: Request) -> JSONResponse:
        denied = self._check_key(request.headers)
        if denied is not None:
            return denied
        if self.model is None:
            return JSONResponse({"error": "no model loaded yet"}, status_code=503)
        return JSONResponse(self.model.describe())

    # Ingress answers these paths through answer_asgi; the routes give them their docs and schema.
    @api.post("/predict", summary="Predict rows (MLflow scoring protocol)", openapi_extra=PREDICT_DOC)
    async def predict(self, request: Request) -> Response:
        return await self._answer(request.headers, await request.body())

    @api.post("/invocations", summary="Same as /predict, at MLflow's path", openapi_extra=PREDICT_DOC)
    async def invocations(self, request: Request) -> Response:
        return await self._answer(request.headers, await request.body())

    async def answer_asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``POST /predict`` and ``/invocations`` as ``Ingress`` hands them over: the routes' answer."""
        body = await _request_body(receive)
        if body is not None:
            response = await self._answer(Headers(scope=scope), body)
            await response(scope, receive, send)

    async def _answer(self, headers: Headers, body: bytes) -> Response:
        start = time.perf_counter()
        model, n, hits, misses = self.model, 0, 0, 0
        try:
            denied = self._check_key(headers)
            if denied is not None:
                return _record(self, start, denied, 0, 0, 0)
            if model is None:
                raise RequestError(503, "no model loaded yet")
            rows = parse_rows(body, headers.get("content-type"), model.schema, max_rows=self.config.max_rows)
            n = rows.num_rows
            answers, hits, misses = await self._rows(model, rows)
        except RequestError as exc:
            return _record(self, start, JSONResponse(exc.body(), status_code=exc.status), 0, 0, 0)
        except Exception:  # noqa: BLE001 - our fault, not the request's: logged, answered, counted
            logger.exception("prediction failed")
            error = JSONResponse({"error": "internal error: the prediction failed"}, status_code=500)
            return _record(self, start, error, 0, 0, 0)
        request_id = os.urandom(6).hex()
        for i, answer in enumerate(answers):
            answer["prediction_id"] = f"{request_id}-{i}"
        if self.monitor is not None:
            try:
                self.monitor.offer(rows, answers, model.classes)
            except Exception:  # noqa: BLE001 - sampling never fails a request
                logger.exception("sampling for the monitor failed")
        body = {"predictions": answers, "model": {"name": model.name, "version": model.version}}
        headers = {"x-model-version": model.version, "x-cache-hits": str(hits)}
        response = Response(
            headers=headers,
            content=orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY),
            media_type="application/json",
        )
        return _record(self, start, response, n, hits, misses)

    @api.post(
        "/feedback",
        summary="Ground truth for served predictions (by prediction_id, or a row)",
        openapi_extra=FEEDBACK_DOC,
    )
    async def feedback(self, request: Request) -> JSONResponse:
        """Labels joined to served predictions by ``prediction_id``, or rows scored now with their label."""
        denied = self._check_key(request.headers)
        if denied is not None:
            return denied
        model, monitor = self.model, self.monitor
        try:
            if model is None or monitor is None:
                raise RequestError(503, "no model or no monitor (args.monitor.enabled) to take feedback")
            items = await self._feedback_items(model, await request.body())
            result = await monitor.feedback(items)
        except RequestError as exc:
            return JSONResponse(exc.body(), status_code=exc.status)
        except (ConnectionError, TimeoutError) as exc:
            return JSONResponse(
                {"error": f"the monitor is not reachable: {type(exc).__name__}"}, status_code=503
            )
        return JSONResponse(result)

    async def _feedback_items(self, model: ServedModel, body: bytes) -> list[dict[str, Any]]:
        items = parse_feedback(body)
        rows = [i for i, item in enumerate(items) if "row" in item]
        if rows:
            raw = orjson.dumps({"dataframe_records": [items[i]["row"] for i in rows]})
            parsed = parse_rows(raw, "application/json", model.schema, max_rows=self.config.max_rows)
            answers = await self._predict((model, parsed))
            for i, answer in zip(rows, answers, strict=True):
                items[i] = {"label": items[i]["label"], "score": answer_score(answer, model.classes)}
        return items

    async def _rows(self, model: ServedModel, rows: Rows) -> tuple[list[dict], int, int]:
        """Each row's answer: from the cache where it has it, the rest predicted in one batched call."""
        use_cache = 0 < rows.num_rows <= self.config.cache_max_rows
        if not use_cache:
            return await self._predict((model, rows)), 0, rows.num_rows
        keys = row_keys(rows, version=model.version)
        errors = self.cache.stats.errors
        cached = await self.cache.get(keys)
        self.metrics.counts["cache_errors"] += self.cache.stats.errors - errors
        missing = [i for i, v in enumerate(cached) if v is None]
        if not missing:
            return cached, len(keys), 0
        fresh = await self._predict((model, rows.take(missing) if len(missing) < len(keys) else rows))
        self.cache.put({keys[i]: answer for i, answer in zip(missing, fresh, strict=True)})
        for i, answer in zip(missing, fresh, strict=True):
            cached[i] = dict(answer)
        return cached, len(keys) - len(missing), len(missing)

    @serve.batch(max_batch_size=64, batch_wait_timeout_s=0.002)
    async def _predict(self, jobs: list[tuple[ServedModel, Rows]]) -> list[list[dict]]:
        """Concurrent requests' rows in one model call per model version (requests racing a swap may
        carry two)."""
        out: list[list[dict] | None] = [None] * len(jobs)
        by_model: dict[int, list[int]] = {}
        for i, (model, _) in enumerate(jobs):
            by_model.setdefault(id(model), []).append(i)
        for indices in by_model.values():
            model = jobs[indices[0]][0]
            parts = [jobs[i][1] for i in indices]
            try:
                merged = Rows.concat(parts)
            except (pa.ArrowInvalid, pa.ArrowTypeError):  # e.g. one request's category codes as numbers
                for i in indices:
                    out[i] = await self._call(model, jobs[i][1])
                continue
            answers = await self._call(model, merged)
            offset = 0
            for i, part in zip(indices, parts, strict=True):
                out[i] = answers[offset : offset + part.num_rows]
                offset += part.num_rows
        return out  # type: ignore[return-value]

    async def _call(self, model: ServedModel, rows: Rows) -> list[dict]:
        if rows.num_rows >= THREAD_ROWS:
            return await asyncio.to_thread(model.predict_rows, rows)
        return model.predict_rows(rows)

    def _check_key(self, headers: Headers) -> JSONResponse | None:
        if self._api_key is None:
            return None
        given = headers.get("x-api-key") or ""
        auth = headers.get("authorization") or ""
        if not given and auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        if given and hmac.compare_digest(given.encode(), self._api_key.encode()):
            return None
        return JSONResponse({"error": "missing or wrong API key (header X-API-Key)"}, status_code=401)

    async def __del__(self) -> None:
        for task in getattr(self, "_tasks", []):
            task.cancel()
        with contextlib.suppress(Exception):
            await self.cache.flush()
