"""`automl serve` as a user runs it: a subprocess serving a model directory, a request, then Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from app.testing import services

pytestmark = pytest.mark.slow


def test_automl_serve_answers_and_stops_cleanly_on_ctrl_c(family_dirs, rows, tmp_path):
    _, records = rows
    port = services.free_port()
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    cmd = [sys.executable, "-m", "app.cli", "serve", str(family_dirs["xgboost"]), "--port", str(port)]
    proc = subprocess.Popen(
        cmd, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True, cwd=tmp_path
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2)
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read()
                time.sleep(0.5)
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=json.dumps({"dataframe_records": records[:3]}).encode(),
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert len(json.loads(resp.read())["predictions"]) == 3
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
        assert "API docs" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


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
