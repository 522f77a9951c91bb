#!/usr/bin/env bash
# The README's test command: install the locked environment and the system services the tests use when
# they are missing, set the environment the tests need, then check the import layers and run pytest.
# `.ci/run` is this script, so CI runs what a newcomer runs. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet uv

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
apt_install() {
  # Debian's packages; apt-get update once, and only when something is missing.
  if [ -z "${APT_UPDATED:-}" ]; then
    $SUDO apt-get update -qq
    APT_UPDATED=1
  fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
# Redis: the tests use the machine's on 127.0.0.1:6379 (they start their own redis-server if it is down,
# but the binary must exist).
command -v redis-server >/dev/null 2>&1 || apt_install redis-server
# Prometheus (promtool checks deploy/prometheus; a test scrapes the service with a real one).
command -v prometheus >/dev/null 2>&1 || apt_install prometheus
# openssh-server: tests/deploy/test_cluster_local.py runs `ray up`/`ray down` over SSH to 127.0.0.1 (sshd is
# started per connection by the test, in a PID namespace of its own; no daemon).
[ -x /usr/sbin/sshd ] || apt_install openssh-server
if ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
fi

export RAY_USAGE_STATS_ENABLED=0
# The tests' Ray processes (ray start, serve, CLI subprocesses) run in this venv: without this, Ray's uv
# hook gives every worker of a driver started by `uv run` a fresh environment without the extras.
export RAY_ENABLE_UV_RUN_RUNTIME_ENV=0

# The layers and acyclic-package contracts ([tool.importlinter] in pyproject.toml), the documentation site
# (strict: a broken link, anchor or API reference fails), then the tests.
uv sync --frozen --extra dev
uv run --frozen lint-imports
NO_MKDOCS_2_WARNING=1 uv run --frozen mkdocs build --strict --quiet --site-dir "$(mktemp -d)"
uv run --frozen pytest "$@"
