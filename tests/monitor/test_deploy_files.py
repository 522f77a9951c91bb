"""deploy/: Prometheus's own checks pass on the config and the alert rules, and every metric the
dashboard and the alerts query is one the service or the monitor exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from app.monitor.metrics import exported_names

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
NAME = re.compile(r"\bray_automl_[a-z_]+")


def dashboard_queries() -> list[str]:
    dash = json.loads((DEPLOY / "grafana" / "automl-dashboard.json").read_text())
    return [t["expr"] for p in dash["panels"] for t in p["targets"]]


def alert_queries() -> list[str]:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    return [r["expr"] for g in rules["groups"] for r in g["rules"]]


@pytest.mark.parametrize("args", [["check", "config", "prometheus.yml"], ["check", "rules", "alerts.yml"]])
def test_promtool_accepts_the_config_and_the_rules(args):
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: apt-get install prometheus (scripts/test.sh installs it)"
    done = subprocess.run([promtool, *args], cwd=DEPLOY / "prometheus", capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_dashboard_and_alerts_query_only_exported_names():
    used = {name for q in dashboard_queries() + alert_queries() for name in NAME.findall(q)}
    assert used and used <= exported_names(), used - exported_names()


def test_dashboard_has_the_guide_panels_and_drift_panels():
    titles = {
        p["title"] for p in json.loads((DEPLOY / "grafana" / "automl-dashboard.json").read_text())["panels"]
    }
    assert {
        "Request rate",
        "Error rate",
        "p99 latency",
        "Cache hit rate",
        "Model score (labelled traffic)",
    } <= titles
    assert {"Feature drift (PSI)", "Prediction drift (PSI)"} <= titles
