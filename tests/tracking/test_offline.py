"""Tracking failures never lose a run: unreachable server at the start or gone during a fit, the journal
under ``RUN_DIR/mlruns-pending/``, and ``sync_pending`` uploading it to the real server afterwards."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time

import pytest

from app.config import TrackingConfig
from app.testing.services import free_port
from app.tracking.pending import list_pending, sync_pending
from app.tracking.tracker import PARENT_TAG, MLflowTracker, TrackingOfflineWarning

from .conftest import histories


class TcpProxy:
    """Forwards a loopback port to the MLflow server until ``close()``: then the server is "down"."""

    def __init__(self, upstream_url: str) -> None:
        host, port = upstream_url.removeprefix("http://").split(":")
        self.upstream = (host, int(port))
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                s.close()

    def close(self) -> None:
        self.server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close() alone would not
        self.server.close()
        for conn in self.conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()


def test_unreachable_server_keeps_the_run_locally_and_sync_uploads_it(
    tmp_path, mlflow_url, unique_name, xgb_dir, holdout
):
    down = TrackingConfig(tracking_uri=f"http://127.0.0.1:{free_port()}", experiment_name=unique_name)
    tracker = MLflowTracker(down, run_dir=tmp_path)
    curves = histories(2, rounds=50)
    started = time.monotonic()
    with pytest.warns(TrackingOfflineWarning, match="unreachable.*automl track sync"):
        parent = tracker.start_run("automl")
        tracker.log_params({"num_samples": 2})
        trials = [
            tracker.log_trial(parent, "xgboost", {"eta": 0.1}, curves[i], 50, status, metric="logloss")
            for i, status in enumerate(["completed", "stopped"])
        ]
        tracker.log_metrics({"best_logloss": min(curves[0])})
        tracker.log_dict({"rows": 400}, "profile.json")
        logged = tracker.log_model(xgb_dir, registered_model_name=unique_name, input_example=holdout.head(3))
        tracker.end_run()
    assert time.monotonic() - started < 15
    assert logged is None and tracker.offline

    pending = list_pending(tmp_path)
    assert [p.run_id for p in pending] == [parent, *trials]
    journal = json.loads((pending[0].path / "run.json").read_text())
    assert journal["params"] == {"num_samples": "2"} and journal["status"] == "FINISHED"
    assert (pending[0].path / "models" / "model" / "member_0" / "model.ubj").is_file()

    online = MLflowTracker(TrackingConfig(tracking_uri=mlflow_url), run_dir=tmp_path)  # default experiment
    report = sync_pending(tmp_path, online)

    assert (len(report.runs), report.models, report.artifacts) == (3, 1, 1)
    client = online.client
    remote_parent = report.runs[parent]
    meant_for = online.experiment_id_for(unique_name)  # the experiment the offline run was meant for
    children = client.search_runs([meant_for], filter_string=f"tags.`{PARENT_TAG}` = '{remote_parent}'")
    assert sorted(r.info.run_id for r in children) == sorted(report.runs[t] for t in trials)
    history = sorted((m.step, m.value) for m in client.get_metric_history(report.runs[trials[0]], "logloss"))
    assert history == list(enumerate(curves[0]))
    assert client.get_run(remote_parent).data.metrics["best_logloss"] == min(curves[0])
    assert [a.path for a in client.list_artifacts(remote_parent)] == ["model", "profile.json"]
    assert client.get_model_version_by_alias(unique_name, "champion").run_id == remote_parent
    assert sync_pending(tmp_path, online).runs == {}  # nothing uploaded twice


@pytest.mark.parametrize("noticed_by", ["health probe", "failed call"])
def test_server_going_down_during_a_fit_loses_nothing(
    noticed_by, tmp_path, mlflow_url, unique_name, monkeypatch
):
    import xgboost as xgb

    if noticed_by == "failed call":  # no probe: the log_batch call itself fails, with no retries
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    proxy = TcpProxy(mlflow_url)
    config = TrackingConfig(tracking_uri=proxy.url, experiment_name=unique_name)
    probe_s = 0.0 if noticed_by == "health probe" else 1e9
    tracker = MLflowTracker(config, run_dir=tmp_path, flush_every=10, probe_interval_s=probe_s)

    class LogEachRound(xgb.callback.TrainingCallback):
        def after_iteration(self, model, epoch, evals_log):
            tracker.log_metrics({"train_logloss": evals_log["train"]["logloss"][-1]}, step=epoch)
            if epoch == 24:
                proxy.close()
            return False

    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 4))
    dtrain = xgb.DMatrix(x, label=(x[:, 0] > 0).astype(float))
    run_id = tracker.start_run("fit")
    with pytest.warns(TrackingOfflineWarning):
        booster = xgb.train(
            {"objective": "binary:logistic", "nthread": 1},
            dtrain,
            60,
            evals=[(dtrain, "train")],
            callbacks=[LogEachRound()],
            verbose_eval=False,
        )
        tracker.end_run()
    assert booster.num_boosted_rounds() == 60

    client = MLflowTracker(TrackingConfig(tracking_uri=mlflow_url)).client
    online_steps = [m.step for m in client.get_metric_history(run_id, "train_logloss")]
    assert online_steps == list(range(20))  # two batches of 10 went out before the server went away
    (journal,) = list_pending(tmp_path)
    assert journal.data["remote_run_id"] == run_id

    sync_pending(
        tmp_path, MLflowTracker(TrackingConfig(tracking_uri=mlflow_url, experiment_name=unique_name))
    )
    steps = sorted(m.step for m in client.get_metric_history(run_id, "train_logloss"))
    assert steps == list(range(60))
    assert client.get_run(run_id).info.status == "FINISHED"
