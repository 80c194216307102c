"""``sqlml demo``: the quickstart, on a generated churn data set."""

from __future__ import annotations

import datetime as dt
import sys
import time

import numpy as np
import pyarrow as pa

from sqlml._table import format_arrow
from sqlml.config import Settings

PLANS = ["basic", "standard", "premium"]
REGIONS = ["north", "south", "east", "west"]

STATEMENTS = [
    (
        "Train LightGBM (the default algorithm)",
        "CREATE OR REPLACE MODEL churn\n"
        "  OPTIONS (task = 'classification', target = 'churned', exclude = 'customer_id')\n"
        "  AS SELECT * FROM customers",
    ),
    (
        "Train a logistic regression baseline",
        "CREATE OR REPLACE MODEL churn_baseline\n"
        "  OPTIONS (task = 'classification', algorithm = 'logistic', target = 'churned',\n"
        "           exclude = 'customer_id')\n"
        "  AS SELECT * FROM customers",
    ),
]


def churn_data(rows: int = 100_000, seed: int = 0) -> pa.Table:
    """A realistic customer churn table: numbers, category strings, booleans, dates, a
    timestamp and NULLs; ``churned`` depends on them, with noise."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(0, 72, rows)
    spend = np.round(rng.gamma(4.0, 20.0, rows), 2)
    plan = rng.choice(PLANS, rows, p=[0.5, 0.3, 0.2])
    region = rng.choice(REGIONS, rows)
    tickets = rng.poisson(1.2, rows)
    autopay = rng.random(rows) < 0.6
    signup = np.datetime64("2024-01-01") - tenure.astype("timedelta64[D]") * 30
    last_login_days = rng.exponential(10.0, rows)
    last_login = np.datetime64("2026-11-01T00:00:00") - (last_login_days * 86400).astype(
        "timedelta64[s]"
    )
    logit = (
        -1.0
        - 0.04 * tenure
        + 0.012 * spend
        + 0.45 * tickets
        - 0.8 * autopay
        + np.select([plan == "basic", plan == "premium"], [0.6, -0.5], 0.0)
        + 0.06 * last_login_days
        + np.where(region == "south", 0.3, 0.0)
        + rng.normal(0.0, 0.7, rows)
    )
    churned = rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))
    spend_missing = rng.random(rows) < 0.05
    region_missing = rng.random(rows) < 0.03
    return pa.table(
        {
            "customer_id": pa.array(np.arange(1, rows + 1), pa.int64()),
            "tenure_months": pa.array(tenure, pa.int64()),
            "monthly_spend": pa.array(spend, pa.float64(), mask=spend_missing),
            "plan": pa.array(plan, pa.string()),
            "region": pa.array(region, pa.string(), mask=region_missing),
            "support_tickets": pa.array(tickets, pa.int64()),
            "autopay": pa.array(autopay, pa.bool_()),
            "signup_date": pa.array(signup.astype("datetime64[D]"), pa.date32()),
            "last_login": pa.array(last_login, pa.timestamp("s")),
            "churned": pa.array(churned, pa.bool_()),
        }
    )


def _show(title: str, sql: str) -> None:
    print(f"-- {title}")
    print(sql + ";\n")


def run_demo(settings: Settings, rows: int = 100_000) -> int:
    """Train two models with CREATE MODEL, compare them, describe one, predict."""
    from sqlml.output import progress_printer
    from sqlml.session import connect

    started = time.perf_counter()
    with connect(settings.engine, settings.catalog, settings.database) as session:
        session.progress = progress_printer(sys.stderr)
        customers = churn_data(rows)
        session.register("customers", customers)
        print(
            f"sqlml demo on {session.engine.name}, catalog {session.catalog.uri}\n"
            f"customers: {customers.num_rows:,} rows, columns "
            f"{', '.join(customers.column_names)}\n"
        )
        results = []
        for title, sql in STATEMENTS:
            _show(title, sql)
            results.append(session.sql(sql))
        print("-- Holdout metrics side by side")
        print(format_arrow(pa.concat_tables(results, promote_options="default")), "\n")

        _show("What the catalog knows about the model", "DESCRIBE MODEL churn")
        print(format_arrow(session.sql("DESCRIBE MODEL churn"), max_rows=40), "\n")

        query = (
            "SELECT customer_id, plan, tenure_months,\n"
            "       predict('churn', *) AS will_churn,\n"
            "       round(predict_proba('churn', *)['true'], 3) AS p_churn,\n"
            "       predict('churn_baseline', *) AS baseline\n"
            "FROM customers ORDER BY customer_id LIMIT 5"
        )
        _show("Predict for a few customers (features bind by column name)", query)
        print(format_arrow(session.sql(query)), "\n")

        query = "SELECT * FROM feature_importance('churn') LIMIT 5"
        _show("Which features matter", query)
        print(format_arrow(session.sql(query)), "\n")
    print(f"done in {time.perf_counter() - started:.1f}s ({dt.datetime.now():%H:%M:%S})")
    return 0
