"""The monitor behind the service: sampled rows reach the model's monitor actor, feedback joins labels
by prediction id, shifted traffic and flipped labels are flagged, and a killed monitor costs no request
and comes back with its windows."""

from __future__ import annotations

import shutil
import time

import pytest

from app.data.synthetic import make_frame

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


def wait_until(check, timeout_s: float = 90):
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            value = check()
            if value:
                return value
        except Exception:  # noqa: BLE001 - the actor may be starting or restarting
            pass
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)


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
    wait_until(lambda: monitor_status(name)["predictions"] >= 60)

    flipped = [
        {"prediction_id": p["prediction_id"], "label": 1 - p["prediction"]} for p in body["predictions"]
    ]
    code, _, joined = service.post({"feedback": flipped}, path="/feedback")
    assert code == 200 and joined == {"joined": 60, "unknown": []}
    check = wait_until(
        lambda: (
            monitor_status(name)["last_check"].get("performance", {}).get("labels") == 60
            and monitor_status(name)["last_check"]
        )
    )
    assert check["features"]["x0"]["drifted"] and not check["features"]["x3"]["drifted"]
    assert (
        check["performance"]["degraded"] and check["performance"]["metric"] == "logloss"
    )  # what training recorded

    ray.kill(ray.get_actor(actor_name(name), namespace=NAMESPACE), no_restart=False)
    more = [service.post({"dataframe_records": records[i : i + 1]})[0] for i in range(20)]
    assert more == [200] * 20
    restored = wait_until(lambda: (s := monitor_status(name))["restored"] and s)
    assert restored["predictions"] >= 60 and restored["labels"] == 60


def test_feedback_needs_a_label_and_one_of_prediction_id_or_row(service, run_model, rows):
    _, records = rows
    service.deploy(run_model, monitor={"sample_rate": 1.0})
    assert service.post({"feedback": [{"prediction_id": "x"}]}, path="/feedback")[0] == 422
    assert service.post({"nope": []}, path="/feedback")[0] == 400
    code, _, result = service.post({"feedback": [{"row": records[0], "label": 1}]}, path="/feedback")
    assert code == 200 and result["joined"] == 1
