"""`automl serve` as a user runs it: a subprocess serving a model directory, a request, then Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request

import pytest

from app.testing import services
from app.testing.wait import wait_until

pytestmark = pytest.mark.slow


def test_automl_serve_answers_and_stops_cleanly_on_ctrl_c(family_dirs, rows, tmp_path):
    _, records = rows
    port = services.free_port()
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    cmd = [sys.executable, "-m", "app.cli", "serve", str(family_dirs["xgboost"]), "--port", str(port)]
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with open(out, "w") as stdout, open(err, "w") as stderr:
        proc = subprocess.Popen(
            cmd, env=env, stdout=stdout, stderr=stderr, start_new_session=True, cwd=tmp_path
        )
    try:
        wait_until(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2),
            timeout_s=120,
            what="automl serve to be ready",
            proc=proc,
        )
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=json.dumps({"dataframe_records": records[:3]}).encode(),
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert len(json.loads(resp.read())["predictions"]) == 3
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert "API docs" in err.read_text()
    # Ctrl-C stops the private Ray without the raw "(raylet) Task ServeController..." line on the terminal.
    assert "raylet" not in err.read_text() + out.read_text()


def test_automl_serve_of_a_missing_model_directory_says_so_before_starting_ray(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "serve", "no-such-model"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: model {tmp_path / 'no-such-model'}: no model directory there"


def test_automl_serve_with_a_port_out_of_range_names_the_field(family_dirs, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "serve", str(family_dirs["xgboost"]), "--port", "99999"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == "error: serve config: http_options.port: 99999 is not a port (1-65535)"


def test_automl_serve_with_a_bad_config_key_names_it(tmp_path):
    bad = tmp_path / "serve.yaml"
    bad.write_text(
        "applications:\n  - name: automl\n    import_path: app.serve:build_app\n"
        "    args: {model: /nowhere, cache_ttl: 5}\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "serve", "--config", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "cache_ttl: unknown key" in done.stderr
