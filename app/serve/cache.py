"""The prediction cache: one key per row (model version + a hash of the row's canonical feature values),
in Redis when configured, else an in-process LRU. A cache that is down, slow or full never fails or
holds up a request: its rows count as misses and Redis is skipped for a moment before it is tried again.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from app.data.encode import number_matrix
from app.serve.rows import Rows

if TYPE_CHECKING:
    from app.serve_config import ServeConfig

logger = logging.getLogger(__name__)

KEY_PREFIX = "automl:pred"


def row_keys(rows: Rows, *, version: str) -> list[str]:
    """One cache key per row: the same values give the same key whatever the column order, the numbers'
    formatting (1, 1.0, 1e0) or the request format; a new model version gives new keys."""
    n, features, text = rows.num_rows, rows.features, []
    # All numbers (a request's usual case): the parsed matrix, or one Arrow call; else a cast per column.
    matrix = rows.matrix if rows.matrix is not None else number_matrix(rows.table.select(list(features)))
    if matrix is None:
        table = rows.table
        numeric = []
        for name in features:
            column = table.column(name)
            if (
                pa.types.is_integer(column.type)
                or pa.types.is_floating(column.type)
                or pa.types.is_boolean(column.type)
            ):
                numeric.append(pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False))
            else:
                text.append(pc.cast(column, pa.string()).to_pylist())
        matrix = np.column_stack(numeric) if numeric else None
    parts = []
    if matrix is not None:
        matrix = np.array(matrix, dtype=np.float64, order="C")  # float32 columns too; a copy to change
        matrix[np.isnan(matrix)] = np.nan  # one NaN bit pattern for every missing number
        matrix += 0.0  # -0.0 and 0.0 are the same input
        parts.append([row.tobytes() for row in matrix])
    if text:
        parts.append([orjson.dumps(values) for values in zip(*text, strict=True)])
    prefix = f"{KEY_PREFIX}:{version}:"
    rows = zip(*parts, strict=True) if parts else ([b""] for _ in range(n))
    return [prefix + hashlib.blake2b(b"\x1e".join(row), digest_size=16).hexdigest() for row in rows]


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    errors: int = 0


class LRUCache:
    """In-process least-recently-used cache: the embedded default when no Redis is configured. Its
    ``*_now`` calls never wait, so ``PredictionCache`` makes them inline (a timeout and a task per call
    were a tenth of a cache hit's time)."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self.max_entries = max_entries
        self._data: OrderedDict[str, bytes] = OrderedDict()

    def get_now(self, keys: Sequence[str]) -> list[bytes | None]:
        out = []
        for key in keys:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            out.append(value)
        return out

    def set_now(self, items: dict[str, bytes]) -> None:
        self._data.update(items)
        for key in items:
            self._data.move_to_end(key)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return self.get_now(keys)

    async def set_many(self, items: dict[str, bytes], ttl_s: int) -> None:
        self.set_now(items)

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self._data.clear()


class RedisCache:
    """Redis through one pooled asyncio client (``redis://[:password@]host:port/db`` or ``rediss://``).

    Every call is bounded by ``timeout_s`` (connect and read), so a Redis that hangs costs a request at
    most that long; the client reconnects by itself when Redis is back.

    Example (guide):
        >>> cache = RedisCache(host="redis-cluster.example.com", port=6379, default_ttl=300)  # doctest: +SKIP
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 6379,
        db: int = 0,
        password: str | None = None,
        default_ttl: int = 300,
        timeout_s: float = 0.02,
        max_connections: int = 64,
    ) -> None:
        import redis.asyncio as aioredis

        if not url:
            auth = f":{password}@" if password else ""
            url = f"redis://{auth}{host}:{port}/{db}"
        self.url = url  # holds the password when there is one: never logged
        options = dict(
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            max_connections=max_connections,
            health_check_interval=0,
            retry_on_timeout=False,
        )
        self.client = aioredis.Redis.from_url(url, **options)
        self.default_ttl = default_ttl

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return await self.client.mget(list(keys))

    async def set_many(self, items: dict[str, bytes], ttl_s: int | None = None) -> None:
        async with self.client.pipeline(transaction=False) as pipe:
            for key, value in items.items():
                pipe.set(key, value, ex=ttl_s or self.default_ttl)
            await pipe.execute()

    async def ping(self) -> bool:
        return bool(await self.client.ping())

    async def close(self) -> None:
        await self.client.aclose()


@dataclass
class PredictionCache:
    """Per-row predictions of one model version in a backend (``RedisCache`` or ``LRUCache``).

    A failure or a timeout of the backend is counted, answered as misses, and the backend is skipped
    for ``retry_s`` seconds, so a dead Redis costs a request nothing after the first timeout.

    Example (guide):
        >>> cache = PredictionCache(RedisCache(host="redis", default_ttl=300))  # doctest: +SKIP
    """

    backend: Any = field(default_factory=LRUCache)
    ttl_s: int | None = None  # None: the backend's default_ttl (RedisCache), else RedisCache's default
    timeout_s: float = 0.02
    retry_s: float = 1.0
    stats: CacheStats = field(default_factory=CacheStats)
    _down_until: float = 0.0
    _pending: set[asyncio.Task] = field(default_factory=set)

    @classmethod
    def from_config(cls, config: ServeConfig) -> PredictionCache:
        """The cache ``serve_config.yaml`` asks for: Redis at ``redis_url``, else an in-process LRU."""
        backend: Any = (
            RedisCache(config.redis_url, timeout_s=config.redis_timeout_s, default_ttl=config.cache_ttl_s)
            if config.redis_url
            else LRUCache(config.lru_size)
        )
        return cls(
            backend, ttl_s=config.cache_ttl_s, timeout_s=config.redis_timeout_s, retry_s=config.redis_retry_s
        )

    @property
    def ttl(self) -> int:
        return int(self.ttl_s or getattr(self.backend, "default_ttl", 300))

    @property
    def available(self) -> bool:
        return time.monotonic() >= self._down_until

    async def get(self, keys: Sequence[str]) -> list[Any | None]:
        """Cached values (decoded) for ``keys``, None where missing or when the backend is unavailable."""
        if not keys:
            return []
        raw: list[bytes | None] = [None] * len(keys)
        if isinstance(self.backend, LRUCache):
            raw = self.backend.get_now(keys)
        elif self.available:
            try:
                raw = await asyncio.wait_for(self.backend.get_many(keys), self.timeout_s)
            except Exception as exc:  # noqa: BLE001 - a cache failure is a miss, never a failed request
                self._failed(exc)
        values = [None if r is None else orjson.loads(r) for r in raw]
        hits = sum(v is not None for v in values)
        self.stats.hits += hits
        self.stats.misses += len(values) - hits
        return values

    def put(self, items: dict[str, Any]) -> None:
        """Store ``items`` in the background: the request that computed them does not wait for it."""
        if not items or not self.available:
            return
        encoded = {k: orjson.dumps(v, option=orjson.OPT_SERIALIZE_NUMPY) for k, v in items.items()}
        if isinstance(self.backend, LRUCache):
            self.backend.set_now(encoded)
            return
        task = asyncio.get_running_loop().create_task(self._put(encoded))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def flush(self) -> None:
        """Wait for the background writes started so far (tests, shutdown)."""
        if self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def ping(self) -> bool:
        try:
            return bool(await asyncio.wait_for(self.backend.ping(), self.timeout_s * 5))
        except Exception:  # noqa: BLE001 - readiness reports it, nothing fails
            return False

    async def _put(self, items: dict[str, bytes]) -> None:
        try:
            await asyncio.wait_for(self.backend.set_many(items, self.ttl), self.timeout_s * 5)
        except Exception as exc:  # noqa: BLE001 - a full or dead cache never fails a request
            self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        self.stats.errors += 1
        if self.available:
            logger.warning("prediction cache unavailable for %.1f s: %s", self.retry_s, type(exc).__name__)
        self._down_until = time.monotonic() + self.retry_s
