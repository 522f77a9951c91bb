"""The run tags the tracker writes and the offline journal replays: fixed keys, one place."""

PARENT_TAG = "mlflow.parentRunId"
FAMILY_TAG = "automl.family"
TRIAL_STATUS_TAG = "automl.trial_status"
KIND_TAG = "automl.kind"
