"""Filesystems for local paths and ``s3://`` URIs, configured from arguments or the AWS_* environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow.fs as pafs

if TYPE_CHECKING:
    from app.config import S3Config


@dataclass(frozen=True)
class S3Options:
    """How to reach S3: endpoint override (moto, MinIO), region, anonymous access.

    Unset fields fall back to ``AWS_ENDPOINT_URL`` / ``AWS_REGION`` / ``AWS_DEFAULT_REGION``;
    credentials always come from the environment or the instance profile, never from here.
    """

    endpoint_url: str | None = None
    region: str | None = None
    anonymous: bool = False

    @classmethod
    def from_config(cls, config: S3Config | None) -> S3Options:
        """The options of a ``data.s3`` config section (None: from the environment only)."""
        if config is None:
            return cls()
        return cls(endpoint_url=config.endpoint_url, region=config.region, anonymous=config.anonymous)

    def resolved(self, env: Mapping[str, str] | None = None) -> S3Options:
        env = os.environ if env is None else env
        return S3Options(
            endpoint_url=self.endpoint_url or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL"),
            region=self.region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
            anonymous=self.anonymous,
        )

    def arrow(self) -> pafs.S3FileSystem:
        """A pyarrow S3 filesystem (picklable, so Ray tasks get the same endpoint)."""
        opts = self.resolved()
        kwargs: dict = {"anonymous": opts.anonymous}
        if opts.region:
            kwargs["region"] = opts.region
        if opts.endpoint_url:
            scheme, _, host = opts.endpoint_url.partition("://")
            kwargs["endpoint_override"] = host or scheme
            kwargs["scheme"] = scheme if host else "https"
        return pafs.S3FileSystem(**kwargs)

    def fsspec_storage_options(self) -> dict:
        """The same settings for s3fs (Dask, pandas)."""
        opts = self.resolved()
        storage: dict = {"anon": opts.anonymous}
        client: dict = {}
        if opts.endpoint_url:
            client["endpoint_url"] = opts.endpoint_url
        if opts.region:
            client["region_name"] = opts.region
        if client:
            storage["client_kwargs"] = client
        return storage


def is_s3(uri: str) -> bool:
    return uri.startswith(("s3://", "s3a://"))


def strip_scheme(uri: str) -> str:
    """``s3://bucket/key`` -> ``bucket/key`` (pyarrow filesystems take paths without scheme)."""
    for scheme in ("s3://", "s3a://", "file://"):
        if uri.startswith(scheme):
            return uri[len(scheme) :]
    return uri


def filesystem_for(uri: str, s3: S3Options | None = None) -> tuple[pafs.FileSystem, str]:
    """The pyarrow filesystem that reads ``uri`` and the path to give it."""
    if is_s3(uri):
        return (s3 or S3Options()).arrow(), strip_scheme(uri)
    return pafs.LocalFileSystem(), os.path.abspath(strip_scheme(uri))
