"""The monitor behind the service: sampled rows reach the model's monitor actor, feedback joins labels
by prediction id, shifted traffic and flipped labels are flagged, and a killed monitor costs no request
and comes back with its windows."""

from __future__ import annotations

import shutil

import pytest

from app.data.synthetic import make_frame
from app.testing.wait import wait_until

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run_model(family_dirs, ray_session, tmp_path_factory):
    """A model directory with the training profile beside it, as `automl fit` leaves it."""
    import ray

    from app.data.stats import profile

    run = tmp_path_factory.mktemp("monitored") / "run"
    model_dir = shutil.copytree(family_dirs["xgboost"], run / "model")
    frame = make_frame(3_000, task="binary", seed=0)
    numeric = [c for c in frame.columns if c.startswith("x")]
    profile(ray.data.from_pandas(frame), numeric=numeric, categorical=["city"], target="y").save(
        run / "profile.json"
    )
    return model_dir


def monitor_status(name: str) -> dict:
    import ray

    from app.monitor.actor import NAMESPACE, actor_name

    return ray.get(ray.get_actor(actor_name(name), namespace=NAMESPACE).status.remote(), timeout=30)


def test_shifted_traffic_and_flipped_labels_are_flagged_and_a_killed_monitor_comes_back(service, run_model):
    import ray

    from app.monitor.actor import NAMESPACE, actor_name

    service.deploy(
        run_model, monitor={"sample_rate": 1.0, "check_every_s": 1.0, "min_window": 30, "min_labels": 20}
    )
    shifted = make_frame(60, task="binary", seed=5).drop(columns=["y"])
    shifted["x0"] = shifted["x0"] + 4.0
    records = shifted.assign(signup=shifted["signup"].astype(str)).to_dict(orient="records")
    status, headers, body = service.post({"dataframe_records": records})
    assert status == 200
    name = f"{body['model']['name']}@{body['model']['version']}"
    # The monitor actor may be starting or restarting: its status call failing means "not yet".
    wait_until(
        lambda: monitor_status(name)["predictions"] >= 60,
        timeout_s=90,
        interval_s=0.5,
        what="the 60 sampled rows at the monitor",
    )

    flipped = [
        {"prediction_id": p["prediction_id"], "label": 1 - p["prediction"]} for p in body["predictions"]
    ]
    code, _, joined = service.post({"feedback": flipped}, path="/feedback")
    assert code == 200 and joined == {"joined": 60, "unknown": []}
    check = wait_until(
        lambda: (
            monitor_status(name)["last_check"].get("performance", {}).get("labels") == 60
            and monitor_status(name)["last_check"]
        ),
        timeout_s=90,
        interval_s=0.5,
        what="a check over the 60 labels",
    )
    assert check["features"]["x0"]["drifted"] and not check["features"]["x3"]["drifted"]
    assert (
        check["performance"]["degraded"] and check["performance"]["metric"] == "logloss"
    )  # what training recorded

    ray.kill(ray.get_actor(actor_name(name), namespace=NAMESPACE), no_restart=False)
    more = [service.post({"dataframe_records": records[i : i + 1]})[0] for i in range(20)]
    assert more == [200] * 20
    restored = wait_until(
        lambda: (s := monitor_status(name))["restored"] and s,
        timeout_s=90,
        interval_s=0.5,
        what="the killed monitor back with its windows",
    )
    assert restored["predictions"] >= 60 and restored["labels"] == 60


def test_feedback_needs_a_label_and_one_of_prediction_id_or_row(service, run_model, rows):
    _, records = rows
    service.deploy(run_model, monitor={"sample_rate": 1.0})
    assert service.post({"feedback": [{"prediction_id": "x"}]}, path="/feedback")[0] == 422
    assert service.post({"nope": []}, path="/feedback")[0] == 400
    code, _, result = service.post({"feedback": [{"row": records[0], "label": 1}]}, path="/feedback")
    assert code == 200 and result["joined"] == 1


def test_a_real_prometheus_scrapes_every_metric_the_dashboard_uses(service, run_model, rows, tmp_path):
    import json
    import re
    import urllib.parse
    import urllib.request

    import ray

    from app.testing import services
    from tests.monitor.test_deploy_files import dashboard_queries

    _, records = rows
    service.deploy(
        run_model, monitor={"sample_rate": 1.0, "check_every_s": 1.0, "min_window": 5, "min_labels": 5}
    )
    status, _, body = service.post({"dataframe_records": records})
    service.post({"dataframe_records": records[:1]})  # a cache hit
    service.post({"dataframe_records": [{"x0": "bad"}]})  # an error
    # Sampled rows reach the monitor within a second or so: label each prediction once it is there.
    pending = {p["prediction_id"] for p in body["predictions"]}

    def label_pending():
        items = [{"prediction_id": pid, "label": 1} for pid in sorted(pending)]
        result = service.post({"feedback": items}, path="/feedback")[2]
        pending.intersection_update(result["unknown"])
        return not pending

    wait_until(label_pending, timeout_s=60, interval_s=0.5, what="a label joined to every prediction")
    wanted = sorted({n for q in dashboard_queries() for n in re.findall(r"\bray_automl_[a-z_]+", q)})
    # Ray's head writes this file from its dashboard; the session's Ray has none, so list its nodes here.
    discovery = tmp_path / "prom_metrics_service_discovery.json"
    targets = [f"{n['NodeManagerAddress']}:{n['MetricsExportPort']}" for n in ray.nodes() if n["Alive"]]
    discovery.write_text(json.dumps([{"labels": {"job": "ray"}, "targets": targets}]))
    with services.prometheus(service_discovery=discovery) as prom:
        left = list(wanted)

        def all_scraped() -> bool:
            missing = []
            for name in wanted:
                url = f"{prom}/api/v1/query?query={urllib.parse.quote(name)}"
                result = json.loads(urllib.request.urlopen(url, timeout=10).read())["data"]["result"]
                if not result:
                    missing.append(name)
            left[:] = missing
            return not left

        try:
            wait_until(all_scraped, timeout_s=120, interval_s=3, what="every dashboard metric in Prometheus")
        except TimeoutError as exc:
            pytest.fail(f"{exc}; not scraped: {left}")
