"""Online prediction: the project's Ray Serve application vs a bare uvicorn + FastAPI app serving the
same model, same client, same concurrency, same machine. The bare app is written the strong way: orjson
parses the body and encodes the answer, the booster predicts with ``inplace_predict``.

The model: XGBoost, 200 trees of depth 6 on 30 numeric features. The client (``--client``, run in a
process of its own) keeps ``--concurrency`` requests in flight for ``--seconds`` per scenario (bounded in
count too) against loopback only:
- ``1row-miss``: one fresh row per request (never cached); ``1row-hit``: one of 16 rows (cache hits);
- ``1k``: 1,000 rows per request (over ``cache_max_rows``: no cache); ``1k-arrow``: the same as an Arrow
  IPC stream instead of JSON (the project only).

The Serve side runs with the settings named by ``--modes`` (each in the environment of the Ray it
starts): ``proxy`` is Serve's default HTTP proxy on the documented port; ``direct`` sets
``RAY_SERVE_THROUGHPUT_OPTIMIZED=1`` (direct ingress: the replica itself listens, no proxy hop) with the
replica's HTTP port pinned by ``RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT`` — the port clients are told to use;
``haproxy`` adds ``RAY_SERVE_ENABLE_HA_PROXY=1`` (HAProxy on the documented port, in front of the replicas'
direct-ingress ports; ``--modes proxy,direct,haproxy``). Every mode takes serve_config.yaml as it is
(access log off, monitoring on, the in-process cache) with one replica and no autoscaling.

    uv run python bench/serve.py                      # proxy and direct, 10 s per scenario
Last line: JSON with ``ratio`` (1-row requests/s ÷ bare), ``ratio_1k`` (1,000-row JSON predictions/s ÷
bare), ``ratio_arrow`` (1,000 rows as Arrow IPC ÷ the bare app's 1,000-row JSON), ``p99_ms``,
``cache_hit_p99_ms``, ``predictions_per_s``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._harness import emit, report  # noqa: E402

FEATURES = [f"x{i}" for i in range(30)]
BARE_APP = """
import sys
import numpy as np
import orjson
import xgboost as xgb
from fastapi import FastAPI, Request, Response

# The strong plain way: the booster from its native file, the body parsed by orjson straight into a
# numpy matrix, the answer (the same per-row fields as the project's) encoded by orjson.
booster = xgb.Booster(model_file=sys.argv[1] + "/model.ubj")
app = FastAPI()


@app.post("/predict")
async def predict(request: Request):
    split = orjson.loads(await request.body())["dataframe_split"]
    p = booster.inplace_predict(np.asarray(split["data"], dtype=np.float32))
    rows = [{"prediction": int(q > 0.5), "proba_0": float(1 - q), "proba_1": float(q)} for q in p]
    return Response(orjson.dumps({"predictions": rows}), media_type="application/json")


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False)
"""


def make_model(out: Path) -> Path:
    import xgboost as xgb

    from app.data.encode import Preprocessor
    from app.train.model import save_model
    from app.train.result import TrainResult

    rng = np.random.default_rng(0)
    x = rng.normal(size=(20_000, 30)).astype(np.float32)
    y = (x[:, :5].sum(axis=1) + rng.normal(size=len(x)) > 0).astype(np.float32)
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 6, "nthread": 2},
        xgb.DMatrix(x, y, feature_names=FEATURES),
        200,
    )
    pre = Preprocessor(
        features=FEATURES, categories={}, datetime=[], target="y", task="binary", classes=[0, 1]
    )
    result = TrainResult(
        family="xgboost", task="binary", model=booster, preprocessor=pre, metric_name="logloss",
        history={"logloss": [0.0]}, best_iteration=199, best_score=0.0, num_rounds=200,
        feature_importance={}, wall_time_s=0.0, params={},
    )  # fmt: skip
    return save_model(result, out)


def body(rows: int, rng: np.random.Generator) -> bytes:
    data = np.round(rng.normal(size=(rows, 30)), 6).tolist()
    return json.dumps({"dataframe_split": {"columns": FEATURES, "data": data}}).encode()


def arrow_body(rows: int, rng: np.random.Generator) -> bytes:
    """The same rows as an Arrow IPC stream (``application/vnd.apache.arrow.stream``)."""
    import pyarrow as pa

    data = rng.normal(size=(rows, 30))
    table = pa.table({name: data[:, j] for j, name in enumerate(FEATURES)})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


ARROW = "application/vnd.apache.arrow.stream"


async def load(
    url: str,
    bodies: list[bytes],
    *,
    concurrency: int,
    seconds: float,
    max_requests: int,
    content_type: str = "application/json",
) -> dict:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    statuses: dict[str, int] = {}
    deadline = time.perf_counter() + seconds
    counter = iter(range(max_requests))

    async def worker(session):
        nonlocal errors
        for i in counter:
            if time.perf_counter() > deadline:
                return
            start = time.perf_counter()
            async with session.post(
                url, data=bodies[i % len(bodies)], headers={"content-type": content_type}
            ) as r:
                await r.read()
                errors += r.status != 200
                if r.status != 200:
                    statuses[str(r.status)] = statuses.get(str(r.status), 0) + 1
            latencies.append(time.perf_counter() - start)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        wall = time.perf_counter() - start
    lat = np.array(latencies) * 1000
    return {
        "requests": len(latencies),
        "errors": errors,
        **({"error_statuses": statuses} if statuses else {}),
        "rps": len(latencies) / wall,
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
    }


def client_main(args) -> None:
    """Runs in its own process: the scenarios against ``args.url``, one JSON line of results."""
    # The client keeps to the last core: at normal priority it would otherwise take the CPU from Ray's
    # workers (which run at nice 15) but not from the bare app, and measure that instead of the servers.
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {(os.cpu_count() or 1) - 1})
    rng = np.random.default_rng(1)
    scenarios = {
        "1row-miss": [body(1, rng) for _ in range(20_000)],
        "1row-hit": [body(1, rng) for _ in range(16)],
        "1k": [body(1000, rng) for _ in range(8)],
        "1k-arrow": [arrow_body(1000, rng) for _ in range(8)],
    }
    out = {}
    for name in args.scenarios.split(","):
        bodies = scenarios[name]
        kind = ARROW if name.endswith("arrow") else "application/json"
        warm = dict(concurrency=args.concurrency, seconds=1.0, max_requests=200, content_type=kind)
        asyncio.run(load(args.url, bodies[:16], **warm))
        out[name] = asyncio.run(
            load(
                args.url,
                bodies,
                concurrency=args.concurrency,
                seconds=args.seconds,
                max_requests=200_000,
                content_type=kind,
            )
        )
    print(json.dumps(out))


def run_client(url: str, scenarios: str, args) -> dict:
    cmd = [sys.executable, __file__, "--client", "--url", url, "--scenarios", scenarios,
           "--seconds", str(args.seconds), "--concurrency", str(args.concurrency)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def wait_http(url: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.3)
    raise TimeoutError(url)


def bare(model_dir: Path, args, tmp: Path) -> dict:
    from app.testing.services import free_port

    script = tmp / "bare_app.py"
    script.write_text(BARE_APP)
    port = free_port()
    # One model thread, as Ray gives a 1-CPU replica (OMP_NUM_THREADS=1): on 2 cores a 2-thread 1-row
    # predict spends its time in OpenMP barriers.
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(script), str(model_dir), str(port)], env=env)
    try:
        wait_http(f"http://127.0.0.1:{port}/docs")
        return run_client(f"http://127.0.0.1:{port}/predict", "1row-miss,1k", args)
    finally:
        proc.terminate()
        proc.wait(15)


def project(
    model_dir: Path,
    mode: str,
    args,
    *,
    scenarios: str = "1row-miss,1row-hit,1k,1k-arrow",
    serve_args: dict | None = None,
) -> dict:
    """The Serve application in a Ray started by a child process with ``mode``'s environment and
    ``serve_args`` over serve_config.yaml's args."""
    from app.testing.services import free_port

    port = client_port = free_port()
    env = dict(os.environ)  # the access log is off in serve_config.yaml (logging_config)
    env.pop("RAY_ADDRESS", None)
    if mode == "direct":
        # The replica's own port, apart from serve_config's (which Serve's proxy still takes): on one port
        # the replica's listener moved to the next and the client measured the proxy.
        client_port = free_port()
        env.update(
            RAY_SERVE_THROUGHPUT_OPTIMIZED="1",
            RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT=str(client_port),
            RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT=str(client_port + 50),
        )
    elif mode == "haproxy":
        # HAProxy on serve_config's port in front of the replicas' direct-ingress ports: one stable port
        # for clients, as many replicas as autoscaling gives.
        env.update(RAY_SERVE_THROUGHPUT_OPTIMIZED="1", RAY_SERVE_ENABLE_HA_PROXY="1")
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(model_dir), "--port", str(port)]
        + ["--serve-args", json.dumps(serve_args or {})],
        env=env,
        stdin=subprocess.PIPE,
    )
    try:
        wait_http(f"http://127.0.0.1:{client_port}/readyz", timeout_s=180)  # the model loaded
        return run_client(f"http://127.0.0.1:{client_port}/predict", scenarios, args)
    finally:
        server.stdin.close()
        server.wait(60)


def serve_main(args) -> None:
    """Runs in its own process: Ray + the application, until stdin closes."""
    import ray

    from app.cluster import start_local
    from app.serve.deploy import deploy, load_serve_config

    start_local(num_cpus=2)  # loopback, this venv (not Ray's uv hook)
    config = load_serve_config(
        Path(__file__).resolve().parents[1] / "serve_config.yaml",
        model=args.serve,
        port=args.port,
        args=json.loads(args.serve_args or "{}"),
        deployment={"autoscaling_config": None, "num_replicas": 1},
    )
    deploy(config)
    sys.stdin.read()
    from ray import serve

    serve.shutdown()
    ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--modes", default="proxy,direct")
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--scenarios", help=argparse.SUPPRESS)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-args", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        return client_main(args)
    if args.serve:
        return serve_main(args)
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        model_dir = make_model(Path(tmp) / "model")
        base = bare(model_dir, args, Path(tmp))
        for name, fig in base.items():
            report(f"bare uvicorn {name}", **fig)
        results = {}
        for mode in args.modes.split(","):
            results[mode] = project(model_dir, mode, args)
            for name, fig in results[mode].items():
                report(f"serve ({mode}) {name}", **fig)
    best = max(results, key=lambda m: results[m]["1row-miss"]["rps"])
    ours = results[best]
    ratio = ours["1row-miss"]["rps"] / base["1row-miss"]["rps"]
    ratio_1k = ours["1k"]["rps"] / base["1k"]["rps"]
    ratio_arrow = ours["1k-arrow"]["rps"] / base["1k"]["rps"]
    emit(
        "serve",
        ratio=ratio,
        ratio_1k=round(ratio_1k, 4),
        ratio_arrow=round(ratio_arrow, 4),
        mode=best,
        p99_ms=round(ours["1row-miss"]["p99_ms"], 2),
        cache_hit_p99_ms=round(ours["1row-hit"]["p99_ms"], 2),
        predictions_per_s=round(ours["1k"]["rps"] * 1000),
        arrow_predictions_per_s=round(ours["1k-arrow"]["rps"] * 1000),
        bare_rps_1row=round(base["1row-miss"]["rps"], 1),
        bare_predictions_per_s=round(base["1k"]["rps"] * 1000),
        modes={m: {k: round(v["rps"], 1) for k, v in r.items()} for m, r in results.items()},
        errors=sum(v["errors"] for r in results.values() for v in r.values()),
    )


if __name__ == "__main__":
    main()
