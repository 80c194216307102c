"""The curated public API: sorted, complete, and every error under one root."""

from __future__ import annotations

import inspect

import sqlml
from sqlml import errors


def test_all_is_sorted_and_unique() -> None:
    assert sqlml.__all__ == sorted(sqlml.__all__)
    assert len(set(sqlml.__all__)) == len(sqlml.__all__)


def test_all_is_complete() -> None:
    public = {
        name
        for name, value in vars(sqlml).items()
        if not name.startswith("_") and not inspect.ismodule(value) and name != "annotations"
    }
    assert public | {"__version__"} == set(sqlml.__all__)


def test_every_error_is_exported_and_derives_from_the_root() -> None:
    classes = {
        name
        for name, value in vars(errors).items()
        if inspect.isclass(value) and issubclass(value, Exception)
    }
    assert classes <= set(sqlml.__all__)
    for name in classes:
        assert issubclass(getattr(errors, name), errors.SqlmlError)
