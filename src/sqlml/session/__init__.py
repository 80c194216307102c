"""The one entry point: a Session wires an engine, a catalog and the SQL front end.

The session itself is in :mod:`sqlml.session.core`; how predict calls run in
:mod:`~sqlml.session.planner`; sqlml's own statements in :mod:`~sqlml.session.statements`;
attached PostgreSQL schemas in :mod:`~sqlml.session.sources`. The process-wide model
cache is :mod:`sqlml.models`.
"""

from __future__ import annotations

from sqlml.session.core import Session, connect
from sqlml.session.planner import INLINED_ALGORITHMS, PredictPlan, StatementState
from sqlml.session.statements import Progress, describe_table, models_table

__all__ = [
    "INLINED_ALGORITHMS",
    "PredictPlan",
    "Progress",
    "Session",
    "StatementState",
    "connect",
    "describe_table",
    "models_table",
]
