"""Prediction cache keys and backends: stable keys, LRU eviction, Redis (with a password) and a Redis
that is down or gone — never an exception, never a wait past the timeout."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pyarrow as pa
import pytest

from app.serve.cache import LRUCache, PredictionCache, RedisCache, row_keys
from app.serve.rows import Rows
from app.testing import services

FEATURES = ["a", "b", "city"]


def keys_of(table, features=FEATURES, version="v1"):
    return row_keys(Rows(tuple(features), table=table), version=version)


def test_row_keys_ignore_column_order_and_number_formatting_but_not_version():
    one = pa.table({"a": [1, 2], "b": [0.5, None], "city": ["paris", "nice"]})
    two = pa.table({"city": ["paris", "nice"], "b": [0.5, float("nan")], "a": [1.0, 2.0]})
    keys = keys_of(one)
    assert keys == keys_of(two)
    assert keys[0] != keys[1]
    assert keys_of(one, version="v2")[0] != keys[0]
    assert keys_of(pa.table({"a": [1], "b": [0.5], "city": ["lyon"]}))[0] != keys[0]


def test_row_keys_of_numbers_alone_agree_across_types_and_missing_spellings():
    """All-numeric rows take one Arrow conversion; integers, float32 and nulls give the keys that the
    column-by-column path gives (a text column beside them takes that path)."""
    numbers = ["a", "b"]
    floats = pa.table({"a": [1.0, 2.0], "b": [0.5, None]})
    mixed = pa.table({"b": pa.array([0.5, float("nan")], pa.float32()), "a": [1, 2]})
    ints = pa.table({"a": [1, 2], "b": pa.array([0.5, None], pa.float64())})
    keys = keys_of(floats, numbers)
    assert keys == keys_of(mixed, numbers) == keys_of(ints, numbers)
    assert keys[0] != keys[1]
    with_text = keys_of(pa.table({"a": [1.0], "b": [0.5], "city": ["paris"]}))
    assert with_text == keys_of(pa.table({"a": [1], "b": [0.5], "city": ["paris"]}))


def test_row_keys_of_a_parsed_matrix_are_those_of_the_same_rows_as_arrow():
    """JSON rows of an all-numeric model arrive as one float matrix: their keys are the Arrow rows' keys
    (NaN and null one missing value, -0.0 and 0.0 one number), so a cached answer is found either way."""
    matrix = np.array([[1.0, np.nan], [-0.0, 2.5]])
    table = pa.table({"b": [None, 2.5], "a": [1, 0]})
    assert row_keys(Rows(("a", "b"), matrix=matrix), version="v1") == keys_of(table, ["a", "b"])


def test_lru_cache_evicts_the_least_recently_used():
    async def go():
        cache = LRUCache(max_entries=2)
        await cache.set_many({"k1": b"1", "k2": b"2"}, 60)
        await cache.get_many(["k1"])
        await cache.set_many({"k3": b"3"}, 60)
        return await cache.get_many(["k1", "k2", "k3"])

    assert asyncio.run(go()) == [b"1", None, b"3"]


def test_redis_with_a_password_stores_and_reads_rows():
    with services.redis_server(url=None, password="s3cret") as url:
        assert url.startswith("redis://:s3cret@")

        async def go():
            cache = PredictionCache(RedisCache(url), ttl_s=30, timeout_s=0.5)
            assert await cache.ping()
            cache.put({"k": {"prediction": 1}})
            await cache.flush()
            got = await cache.get(["k", "missing"])
            await cache.backend.close()
            return got, cache.stats

        got, stats = asyncio.run(go())
    assert got == [{"prediction": 1}, None]
    assert (stats.hits, stats.misses, stats.errors) == (1, 1, 0)


def test_a_dead_redis_gives_misses_quickly_and_is_skipped_until_retry():
    async def go():
        cache = PredictionCache(
            RedisCache(f"redis://127.0.0.1:{services.free_port()}/0", timeout_s=0.05),
            timeout_s=0.05,
            retry_s=30,
        )
        start = time.perf_counter()
        first = await cache.get(["a", "b"])
        cache.put({"a": 1})
        await cache.flush()
        second = await cache.get(["a"])
        return first, second, time.perf_counter() - start, cache

    first, second, elapsed, cache = asyncio.run(go())
    assert first == [None, None] and second == [None]
    assert elapsed < 1.0
    assert cache.stats.errors == 1 and not cache.available  # skipped after the first failure


@pytest.mark.parametrize("url", ["redis://:wrong@127.0.0.1:1/0", "rediss://127.0.0.1:1/0"])
def test_redis_urls_with_password_or_tls_are_accepted(url):
    cache = RedisCache(url, timeout_s=0.05)
    assert cache.client.connection_pool.connection_kwargs["host"] == "127.0.0.1"
