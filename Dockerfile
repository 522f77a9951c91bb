# The project on Ray's own image, installed from uv.lock, running as the image's non-root user `ray`.
#   docker build -t automl:0.1.0 .
#   docker build --build-arg BASE_IMAGE=rayproject/ray:2.60.0-py311-gpu -t automl-gpu:0.1.0 .   # GPU nodes
# The Ray version of the base image is the one uv.lock pins (tests/deploy/test_docker.py checks it).
ARG BASE_IMAGE=rayproject/ray:2.60.0-py311
FROM ${BASE_IMAGE}

# The base image's `ray` user (uid 1000, group users), by number so the host can resolve it.
USER 1000:100
WORKDIR /home/ray/automl
# Bytecode at install time (Ray worker processes otherwise compile every module they import), the image's
# Python only, and the project's venv first on PATH: `ray start`, job drivers and replicas all use it.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_NO_CACHE=1 \
    PATH=/home/ray/automl/.venv/bin:${PATH}

RUN pip install --no-cache-dir uv==0.13.9

# Dependencies first, exactly as locked (this layer is reused while only the code changes).
COPY --chown=1000:100 pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-install-project --extra all --extra aws

COPY --chown=1000:100 app ./app
COPY --chown=1000:100 jobs ./jobs
COPY --chown=1000:100 serve_config.yaml ./
RUN uv sync --frozen --extra all --extra aws \
    && mkdir -p /tmp/ray

# Serve HTTP, dashboard/job API (never publish it beyond loopback), GCS, metrics.
EXPOSE 8000 8265 6380 8080
