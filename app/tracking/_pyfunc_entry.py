"""Models-from-code entry for the pipeline pyfunc: MLflow copies this file into the model and runs it
when loading, so the model object is built from code and native files, never unpickled."""

from mlflow.models import set_model

from app.tracking.pyfunc import PipelineModel

set_model(PipelineModel())
