"""Generated datasets of bench/quality.py shaped like business tables: rare labels, skewed amounts, dates,
many-level categories and id columns unique per row (no signal: a system must neither gain from them nor
crash on them).

One builder per dataset, ``build(rows=..., seed=...) -> DataFrame`` with the label in ``target``; seeded.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TARGET = "target"


def _levels_all_present(rng: np.random.Generator, n: int, levels: int, power: float) -> np.ndarray:
    """Level indices with a long tail (share ~ 1 / (rank + 10) ** power); each level appears at least
    once when ``n >= levels``, so the level count does not depend on luck."""
    share = 1.0 / (np.arange(levels) + 10.0) ** power
    idx = rng.choice(levels, size=n, p=share / share.sum())
    head = min(n, levels)
    idx[:head] = np.arange(head)
    return rng.permutation(idx)


def _unique_ids(rng: np.random.Generator, n: int, prefix: str) -> pd.Series:
    """Ids unique per row, in no relation to anything else in the row."""
    numbers = rng.choice(10**9, size=n, replace=False)
    return pd.Series([f"{prefix}{v:09d}" for v in numbers], dtype="object")


def _with_missing(values, mask: np.ndarray) -> pd.Series:
    return pd.Series(values).where(~mask)  # NaN, written to Parquet as null


def _dates(start: str, days: np.ndarray) -> pd.Series:
    return pd.Series(pd.Timestamp(start) + pd.to_timedelta(days, unit="D")).astype("datetime64[ns]")


def _labels(prefix: str, idx: np.ndarray) -> np.ndarray:
    return np.array([f"{prefix}{i:02d}" for i in idx], dtype=object)


def _rare_label(z: np.ndarray, share: float) -> np.ndarray:
    return (z > np.quantile(z, 1.0 - share)).astype(np.int64)


def merchant_fraud(*, rows: int = 200_000, seed: int = 0, merchants: int = 5_000) -> pd.DataFrame:
    """Card transactions, ~4 % fraud; much of the signal is in a 5,000-level ``merchant`` column (a
    long tail of small merchants, each with its own risk) that its 20-level category only partly explains."""
    rng = np.random.default_rng(seed + 10)
    n = rows
    merchant = _levels_all_present(rng, n, merchants, power=1.05)
    category = rng.integers(0, 20, size=merchants)  # each merchant's category
    category_risk = rng.normal(scale=0.5, size=20)
    merchant_risk = category_risk[category] + rng.normal(scale=0.9, size=merchants)
    amount = np.exp(rng.normal(3.6, 1.1, size=n))  # skewed: most small, a few very large
    hour = rng.integers(0, 24, size=n)
    night = ((hour < 6) | (hour >= 23)).astype(float)
    card_age = rng.exponential(700, size=n)
    country = _levels_all_present(rng, n, 30, power=2.0)
    abroad = (country >= 5).astype(float)
    day = rng.integers(0, 540, size=n)
    x = rng.normal(size=(n, 4))
    signal = (
        merchant_risk[merchant]
        + 0.45 * (np.log(amount) - 3.6)
        + 0.8 * night
        - 0.5 * np.log1p(card_age / 100)
        + 0.6 * abroad
        + 0.6 * x[:, 0]
        + 0.4 * np.tanh(x[:, 1] * x[:, 2])
        + 0.5 * day / 540  # fraud grows over the period
        + 0.3 * (day % 7 >= 5)
    )
    frame = pd.DataFrame(
        {
            "merchant": pd.Series([f"m{i:05d}" for i in merchant], dtype="object"),
            "merchant_category": pd.Series([f"mcc{c:02d}" for c in category[merchant]], dtype="object"),
            "amount": amount.round(2),
            "hour": hour.astype(np.int64),
            # Unknown card age more often for young cards (a new card's history is not in yet).
            "card_age_days": _with_missing(
                card_age.round(), rng.random(n) < np.where(card_age < 60, 0.5, 0.05)
            ),
            "country": _with_missing(_labels("c", country), rng.random(n) < 0.08),
            "txn_date": _dates("2023-01-02", day),
            **{f"f{i}": x[:, i].astype(np.float32) for i in range(4)},
        }
    )
    frame.loc[rng.random(n) < 0.1, "f3"] = np.nan
    frame[TARGET] = _rare_label(signal + rng.logistic(scale=0.7, size=n), 0.04)
    return frame


def customer_churn(*, rows: int = 60_000, seed: int = 0) -> pd.DataFrame:
    """Customers, ~3 % churn next month; a string and an integer id unique per row, skewed spend,
    signup and last-order dates, informative missing values."""
    rng = np.random.default_rng(seed + 11)
    n = rows
    plans = np.array(["free", "basic", "plus", "pro"], dtype=object)
    plan = rng.choice(4, size=n, p=[0.4, 0.3, 0.2, 0.1])
    tenure = rng.gamma(1.5, 300, size=n)
    recency = rng.exponential(25, size=n)
    monthly_spend = np.exp(rng.normal(3.0 + 0.4 * plan, 0.9))
    orders = rng.negative_binomial(2, 0.15, size=n)
    tickets = rng.poisson(0.3 + 0.4 * (recency > 40), size=n)
    discount = rng.beta(2, 8, size=n)
    country = _levels_all_present(rng, n, 25, power=1.8)
    snapshot = "2025-06-30"
    x = rng.normal(size=(n, 3))
    signal = (
        0.035 * np.minimum(recency, 120)
        - 0.35 * np.log1p(tenure / 30)
        + 0.55 * tickets
        - 0.25 * np.log(monthly_spend)
        - np.array([0.0, 0.3, 0.6, 0.9])[plan]
        - 0.1 * np.log1p(orders)
        + 1.5 * discount
        + 0.5 * x[:, 0]
        + 0.3 * x[:, 1] * (plan == 0)
    )
    frame = pd.DataFrame(
        {
            "customer_id": _unique_ids(rng, n, "CUST-"),
            "account_number": rng.choice(10**8, size=n, replace=False).astype(np.int64),
            "plan": pd.Series(plans[plan], dtype="object"),
            "country": _with_missing(_labels("c", country), rng.random(n) < 0.05),
            "signup_date": _dates(snapshot, -tenure.round()),
            "last_order_date": _dates(snapshot, -recency.round()),
            "monthly_spend": monthly_spend.round(2),
            "lifetime_spend": (monthly_spend * (1 + tenure / 30) * rng.lognormal(0, 0.5, size=n)).round(2),
            "orders": orders.astype(np.int64),
            "support_tickets": tickets.astype(np.int64),
            # No discount ever offered reads as missing, and those customers churn less.
            "discount_rate": _with_missing(
                discount.round(3), rng.random(n) < np.where(discount < 0.15, 0.6, 0.1)
            ),
            **{f"f{i}": x[:, i].astype(np.float32) for i in range(3)},
        }
    )
    frame[TARGET] = _rare_label(signal + rng.logistic(scale=0.8, size=n), 0.03)
    return frame


def insurance_claims(*, rows: int = 60_000, seed: int = 0) -> pd.DataFrame:
    """Claim cost per policy: a heavy right tail (a log-normal times a Pareto factor), a policy id
    unique per row, a skewed vehicle value, a 150-level vehicle make, missing values and a start date."""
    rng = np.random.default_rng(seed + 12)
    n = rows
    age = rng.integers(18, 85, size=n)
    vehicle_value = np.exp(rng.normal(9.8, 0.6, size=n))
    make = _levels_all_present(rng, n, 150, power=1.3)
    make_effect = rng.normal(scale=0.4, size=150)
    region = rng.integers(0, 12, size=n)
    region_effect = rng.normal(scale=0.25, size=12)
    prior_claims = rng.poisson(0.4, size=n)
    day = rng.integers(0, 1095, size=n)
    x = rng.normal(size=(n, 3))
    log_mean = (
        6.5
        + 0.015 * np.abs(age - 45)
        + 0.6 * (np.log(vehicle_value) - 9.8)
        + make_effect[make]
        + region_effect[region]
        + 0.4 * prior_claims
        + 0.3 * x[:, 0]
        + 0.2 * np.sin(2 * np.pi * day / 365.25)  # winter claims cost more
    )
    tail = rng.pareto(2.5, size=n) + 1.0  # variance finite, so RMSE is still a fair measure
    cost = np.exp(log_mean + rng.normal(scale=0.5, size=n)) * tail
    frame = pd.DataFrame(
        {
            "policy_id": _unique_ids(rng, n, "POL-"),
            "driver_age": _with_missing(age.astype(float), rng.random(n) < 0.07),
            "vehicle_value": _with_missing(vehicle_value.round(), rng.random(n) < 0.04),
            "vehicle_make": pd.Series([f"make{i:03d}" for i in make], dtype="object"),
            "region": pd.Series(_labels("reg", region)),
            "prior_claims": prior_claims.astype(np.int64),
            "policy_start": _dates("2022-01-01", day),
            **{f"f{i}": x[:, i].astype(np.float32) for i in range(3)},
        }
    )
    frame[TARGET] = cost.round(2).astype(np.float64)
    return frame


def ad_clicks(*, rows: int = 400_000, seed: int = 0, publishers: int = 20_000) -> pd.DataFrame:
    """Ad impressions, ~8 % clicked, ten columns: a 20,000-level ``publisher`` (each with its own click
    rate, which its 25-level category only partly explains), the device, a 40-level country with missing
    values, the slot on the page (worse lower down, more so on phones), a skewed bid, the hour, the user's
    account age (missing more often for new users) and two plain numeric columns, one with missing values."""
    rng = np.random.default_rng(seed + 13)
    n = rows
    publisher = _levels_all_present(rng, n, publishers, power=1.1)
    category = rng.integers(0, 25, size=publishers)  # each publisher's category
    publisher_effect = rng.normal(scale=0.4, size=25)[category] + rng.normal(scale=0.7, size=publishers)
    device = rng.choice(4, size=n, p=[0.55, 0.3, 0.1, 0.05])
    country = _levels_all_present(rng, n, 40, power=1.5)
    slot = rng.integers(1, 9, size=n)
    bid = np.exp(rng.normal(-1.0, 0.8, size=n))
    hour = rng.integers(0, 24, size=n)
    user_age = rng.exponential(400, size=n)
    x = rng.normal(size=(n, 2))
    signal = (
        publisher_effect[publisher]
        + np.array([0.0, -0.3, 0.2, -0.8])[device]
        + rng.normal(scale=0.3, size=40)[country]
        - 0.3 * np.log(slot) * (1.0 + 0.6 * (device == 0))
        + 0.35 * np.log(bid)
        + 0.4 * np.sin(2 * np.pi * hour / 24)
        - 0.3 * np.log1p(user_age / 30)
        + 0.5 * x[:, 0]
        + 0.3 * np.tanh(x[:, 0] * x[:, 1])
    )
    devices = np.array(["phone", "desktop", "tablet", "tv"], dtype=object)
    frame = pd.DataFrame(
        {
            "publisher": pd.Series([f"pub{i:05d}" for i in publisher], dtype="object"),
            "publisher_category": pd.Series(_labels("cat", category[publisher]), dtype="object"),
            "device": pd.Series(devices[device], dtype="object"),
            "country": _with_missing(_labels("c", country), rng.random(n) < 0.06),
            "slot": slot.astype(np.int64),
            "bid": bid.round(4),
            "hour": hour.astype(np.int64),
            # A new user's account age is often not known yet.
            "user_age_days": _with_missing(
                user_age.round(), rng.random(n) < np.where(user_age < 30, 0.4, 0.05)
            ),
            "f0": x[:, 0].astype(np.float32),
            "f1": _with_missing(x[:, 1].astype(np.float32), rng.random(n) < 0.05),
        }
    )
    frame[TARGET] = _rare_label(signal + rng.logistic(scale=0.8, size=n), 0.08)
    return frame
