"""The data stage: find and validate files, stream them with Ray Data, split, profile and encode."""

from app.data.encode import LABEL, WEIGHT, Preprocessor, infer_task
from app.data.errors import DataError, DataTooLargeError
from app.data.filesystem import S3Options
from app.data.io import DatasetInfo, inspect, iter_numpy, load
from app.data.pipeline import PreparedData, prepare
from app.data.spec import DatasetSpec
from app.data.split import Splits, sample, split
from app.data.stats import DatasetProfile, profile

__all__ = [
    "LABEL",
    "WEIGHT",
    "DataError",
    "DataTooLargeError",
    "DatasetInfo",
    "DatasetProfile",
    "DatasetSpec",
    "PreparedData",
    "Preprocessor",
    "S3Options",
    "Splits",
    "infer_task",
    "inspect",
    "iter_numpy",
    "load",
    "prepare",
    "profile",
    "sample",
    "split",
]
