"""The deployment guide's example 5 (production serving with a Redis cache), on Ray Serve.

    uv run python examples/guide_example5.py runs/quickstart/model --redis-host 127.0.0.1 --port 8000
Ctrl-C stops it.
"""

from __future__ import annotations

import argparse

from app.serve import PredictionCache, RedisCache, create_app, run_server
from app.train import load_model


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--redis-host", default="127.0.0.1")
    parser.add_argument("--redis-port", type=int, default=6379)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    # Load production model (native files, never a pickle)
    model = load_model(args.model)

    # Setup Redis cache
    redis_cache = RedisCache(host=args.redis_host, port=args.redis_port, default_ttl=300)  # 5 minutes
    pred_cache = PredictionCache(redis_cache)

    # Create the application (a Ray Serve app with a FastAPI ingress)
    app = create_app(model=model, model_id="v1.2.3", cache=pred_cache)
    print(f"application built: {type(app).__name__}", flush=True)

    # Run it: `workers` are Serve replicas
    run_server(
        model=model,
        host="127.0.0.1",
        port=args.port,
        workers=args.workers,
        model_id="v1.2.3",
        cache=pred_cache,
    )


if __name__ == "__main__":
    main()
