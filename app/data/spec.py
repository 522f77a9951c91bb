"""What a dataset is: where its files are, which column is the target, and the roles of the others."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.config import S3Config
from app.data.filesystem import S3Options


class DatasetSpec(BaseModel):
    """A tabular dataset on local disk or S3.

    Example:
        >>> spec = DatasetSpec(uri="s3://bucket/events/", target="churned", id_column="user_id")
        >>> spec.format is None  # inferred from the files
        True
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    uri: str | list[str] = Field(..., description="Path, directory, glob or s3:// URI, or a list of them.")
    target: str = Field(..., min_length=1, description="Column to predict.")
    format: Literal["parquet", "csv"] | None = Field(None, description="File format; None infers it.")
    features: list[str] | None = Field(None, description="Feature columns; None means all but the roles.")
    categorical: list[str] | None = Field(
        None, description="Categorical features; None detects them from the column types."
    )
    exclude: list[str] = Field(default_factory=list, description="Columns never used as features.")
    id_column: str | None = Field(None, description="Row identifier: keys the split, never a feature.")
    weight_column: str | None = Field(None, description="Sample weights, never a feature.")
    timestamp_column: str | None = Field(None, description="Event time, never a feature.")
    partitioning: Literal["hive"] | None = Field(
        "hive", description="Directory partitioning whose key=value segments become columns."
    )
    s3: S3Config = Field(default_factory=S3Config, description="How s3:// URIs are reached.")

    @field_validator("uri")
    @classmethod
    def _non_empty_uri(cls, value: str | list[str]) -> str | list[str]:
        uris = [value] if isinstance(value, str) else value
        if not uris or any(not u.strip() for u in uris):
            raise ValueError("uri must name at least one non-empty path")
        return value

    @model_validator(mode="after")
    def _roles_distinct(self) -> DatasetSpec:
        roles = {
            "target": self.target,
            "id_column": self.id_column,
            "weight_column": self.weight_column,
            "timestamp_column": self.timestamp_column,
        }
        named = [v for v in roles.values() if v]
        if len(named) != len(set(named)):
            raise ValueError(f"a column has two roles: {roles}")
        for field in ("features", "categorical"):
            cols = getattr(self, field) or []
            clash = sorted(set(cols) & set(named))
            if clash:
                raise ValueError(f"{field} lists role columns {clash}")
        if self.categorical and self.features:
            extra = sorted(set(self.categorical) - set(self.features))
            if extra:
                raise ValueError(f"categorical columns {extra} are not in features")
        return self

    @property
    def uris(self) -> list[str]:
        return [self.uri] if isinstance(self.uri, str) else list(self.uri)

    @property
    def role_columns(self) -> list[str]:
        """Target, id, weight and timestamp columns that are present in this spec."""
        cols = [self.target, self.id_column, self.weight_column, self.timestamp_column]
        return [c for c in cols if c]

    def s3_options(self) -> S3Options:
        return S3Options.from_config(self.s3)
