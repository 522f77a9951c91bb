"""cluster.yaml's local variant brought up and torn down for real: `ray up` / `ray down` with Ray's `local`
provider over SSH to 127.0.0.1, running cluster.yaml's own head start commands (token auth, dashboard on
loopback, metrics port).

Why the `local` provider and not the fake multi-node one: `ray up` is what operators run, and only a real
SSH path exercises the launcher's steps (SSH wait, file mounts, setup and start commands, `ray down`);
the fake provider starts through `ray start --autoscaling-config` and skips all of them.

How it stays off everyone else's Ray on a shared machine: Debian's sshd runs per connection in inetd
mode (`sshd -i`, the SSH ProxyCommand: no daemon, no port) inside a PID namespace of the test's own, so
the `ray stop` that `ray up` and `ray down` run kills only this cluster; HOME and RAY_TMPDIR of the SSH
session are temporary folders, so ~/.ray/auth_token, ~/ray_bootstrap_config.yaml and /tmp/ray of the
machine are untouched. Needs root (the namespace) and openssh-server (`scripts/test.sh` installs it).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml

from app.testing.services import free_port
from app.testing.wait import wait_until
from tests.deploy.conftest import ROOT

SSHD = "/usr/sbin/sshd"
VENV_BIN = str(Path(sys.executable).parent)


def _can_unshare() -> bool:
    try:
        done = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True)
    except FileNotFoundError:
        return False
    return done.returncode == 0


pytestmark = [
    pytest.mark.skipif(
        not Path(SSHD).exists(), reason="needs openssh-server (apt-get install openssh-server)"
    ),
    pytest.mark.skipif(not _can_unshare(), reason="needs root to run sshd in a PID namespace of its own"),
]


@contextlib.contextmanager
def ssh_to_loopback(work: Path):
    """(private key, ProxyCommand, session HOME, namespace init pid): SSH to root@127.0.0.1 into a fresh
    PID namespace."""
    for name in ("id", "host"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(work / name)], check=True)
    (work / "authorized_keys").write_text((work / "id.pub").read_text())
    home, raytmp = work / "home", work / "raytmp"
    home.mkdir()
    raytmp.mkdir()
    (home / ".bashrc").write_text("")  # the launcher runs `source ~/.bashrc` before each command
    (work / "sshd_config").write_text(
        f"HostKey {work / 'host'}\nAuthorizedKeysFile {work / 'authorized_keys'}\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        f"UsePAM no\nStrictModes no\nPidFile none\nLogLevel ERROR\n"
        f"SetEnv HOME={home} RAY_TMPDIR={raytmp} RAY_USAGE_STATS_ENABLED=0\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
    holder = subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", "sleep", "infinity"])
    init_pid = None
    try:
        children = wait_until(
            lambda: Path(f"/proc/{holder.pid}/task/{holder.pid}/children").read_text().split(),
            timeout_s=5,
            interval_s=0.1,
            what="the PID namespace's init process",
            proc=holder,
        )
        init_pid = int(children[0])
        proxy = f"nsenter --target {init_pid} --pid --mount {SSHD} -i -f {work / 'sshd_config'}"
        yield work / "id", proxy, home, init_pid
    finally:
        # SIGKILL to the namespace's init ends every process left in it (a failed `ray down` included).
        with contextlib.suppress(Exception):
            os.kill(init_pid, 9)
        holder.wait(timeout=30)


def local_variant(
    cluster: dict, *, key: Path, proxy: str, token: Path, env_file: Path, ports: dict[str, int]
) -> dict:
    """cluster.yaml for the `local` provider on 127.0.0.1: cluster.yaml's head start commands (this venv
    instead of ~/automl/.venv, free ports, 1 CPU), no Docker or AWS node settings, no workers."""

    def adapt(command: str) -> str:
        command = command.replace("~/automl/.venv/bin", VENV_BIN).replace("$HOME/automl/.venv/bin", VENV_BIN)
        for flag, port in ports.items():
            command = re.sub(rf"--{flag}=\d+", f"--{flag}={port}", command)
        if "ray start" in command:
            extra = ("dashboard-agent-listen-port", "dashboard-agent-grpc-port", "runtime-env-agent-port")
            command += (
                "".join(f" --{f}={free_port()}" for f in extra) + " --num-cpus=1 --include-dashboard=true"
            )
        return command

    return {
        "cluster_name": f"automl-local-{uuid.uuid4().hex[:8]}",
        "provider": {"type": "local", "head_ip": "127.0.0.1", "worker_ips": []},
        "auth": {"ssh_user": "root", "ssh_private_key": str(key), "ssh_proxy_command": proxy},
        # cluster.yaml's mounts of the token and the environment file, from test files.
        "file_mounts": {"~/.ray/auth_token": str(token), "~/.automl/cluster.env": str(env_file)},
        # This machine has the project (the venv the tests run in): only the PATH line of the setup.
        "setup_commands": [adapt(c) for c in cluster["setup_commands"] if ".bashrc" in c],
        "head_start_ray_commands": [adapt(c) for c in cluster["head_start_ray_commands"]],
        "worker_start_ray_commands": [],
    }


def _get(url: str, token: str | None = None) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _environ_of(name: str, init_pid: int) -> dict[str, str]:
    """The environment of the process called ``name`` in the PID namespace of ``init_pid``."""
    namespace = os.readlink(f"/proc/{init_pid}/ns/pid")
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if (
                proc.name.isdigit()
                and os.readlink(proc / "ns" / "pid") == namespace
                and (proc / "comm").read_text().strip() == name
            ):
                pairs = (proc / "environ").read_bytes().split(b"\0")
                return dict(p.decode().split("=", 1) for p in pairs if b"=" in p)
    raise AssertionError(f"no {name} process in the cluster's namespace")


def _listening(port: int) -> list[str]:
    out = subprocess.run(["ss", "-Htln", f"sport = :{port}"], capture_output=True, text=True).stdout
    return [line.split()[3] for line in out.splitlines() if line.strip()]


@pytest.mark.slow
def test_ray_up_and_down_with_the_local_provider_over_ssh():
    cluster = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    work = Path(tempfile.mkdtemp(prefix="rl", dir="/tmp"))  # short: Ray's socket paths live under it
    env = {**os.environ, "RAY_TMPDIR": str(work), "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    token = "automl-test-" + uuid.uuid4().hex
    (work / "token").write_text(token)
    ports = {p: free_port() for p in ("port", "object-manager-port", "dashboard-port", "metrics-export-port")}
    ray = [f"{VENV_BIN}/ray"]
    spec = {"cluster_name": ""}
    try:
        with ssh_to_loopback(work) as (key, proxy, home, init_pid):
            config = work / "cluster.local.yaml"
            (work / "cluster.env").write_text("MLFLOW_TRACKING_URI=http://127.0.0.1:1\n")
            spec = local_variant(
                cluster,
                key=key,
                proxy=proxy,
                token=work / "token",
                env_file=work / "cluster.env",
                ports=ports,
            )
            config.write_text(yaml.safe_dump(spec))
            up = subprocess.run(
                [*ray, "up", "-y", "--no-config-cache", str(config)],
                env=env,
                capture_output=True,
                text=True,
                timeout=240,
            )
            assert up.returncode == 0, up.stdout[-4000:] + up.stderr[-4000:]
            assert (home / ".ray" / "auth_token").read_text() == token  # the file mount reached the node

            dashboard = f"http://127.0.0.1:{ports['dashboard-port']}"
            assert _get(f"{dashboard}/api/version") == 401  # token auth is on
            assert _get(f"{dashboard}/api/version", token) == 200
            assert _listening(ports["dashboard-port"]) == [f"127.0.0.1:{ports['dashboard-port']}"]
            assert _listening(ports["metrics-export-port"])
            raylet = _environ_of("raylet", init_pid)
            assert raylet["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:1"  # cluster.env reached Ray
            assert raylet["RAY_AUTH_MODE"] == "token"

            down = subprocess.run(
                [*ray, "down", "-y", str(config)], env=env, capture_output=True, text=True, timeout=120
            )
            assert down.returncode == 0, down.stdout[-4000:] + down.stderr[-4000:]
            try:  # `ray stop` waits for its processes to exit
                wait_until(
                    lambda: not _listening(ports["port"]) and not _listening(ports["dashboard-port"]),
                    timeout_s=30,
                    interval_s=0.5,
                    what="the head's ports closed after `ray down`",
                )
            except TimeoutError as exc:
                pytest.fail(f"{exc}; ray down said: {down.stdout[-2000:]}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        # The launcher's SSH control sockets: /tmp/ray_ssh_<user hash>/<cluster name hash> (Ray's layout).
        for control in Path("/tmp").glob(
            "ray_ssh_*/" + hashlib.sha256(spec["cluster_name"].encode()).hexdigest()[:10]
        ):
            shutil.rmtree(control, ignore_errors=True)
